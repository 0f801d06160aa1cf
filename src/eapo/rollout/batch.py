"""Episodes to padded tensors, keeping ids, loss mask, log-probs and attention in step.

Right padding of completions (prompts are kept apart, as TRL expects). Padding positions
get loss mask 0 and attention 0 whatever the pad id is, so a tokenizer whose pad equals
EOS cannot leak a real EOS into the padding or a padding token into the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from eapo.types import Episode


def pad_completions(episodes: Sequence[Episode], pad_id: int) -> dict[str, torch.Tensor]:
    """Returns `ids`, `loss_mask`, `logprobs`, `attention_mask`, each (B, T_max)."""
    width = max((len(ep.completion_ids) for ep in episodes), default=0)
    b = len(episodes)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    logprobs = torch.zeros((b, width), dtype=torch.float32)
    attention = torch.zeros((b, width), dtype=torch.long)
    for i, ep in enumerate(episodes):
        n = len(ep.completion_ids)
        if not (n == len(ep.loss_mask) == len(ep.logprobs)):
            raise ValueError(f"episode {ep.uid}: ids, mask and log-probs differ in length")
        ids[i, :n] = torch.tensor(ep.completion_ids, dtype=torch.long)
        mask[i, :n] = torch.tensor(ep.loss_mask, dtype=torch.long)
        logprobs[i, :n] = torch.tensor(ep.logprobs, dtype=torch.float32)
        attention[i, :n] = 1
    return {"ids": ids, "loss_mask": mask, "logprobs": logprobs, "attention_mask": attention}
