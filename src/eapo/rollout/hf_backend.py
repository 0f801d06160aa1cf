"""Generation with a Hugging Face transformers model: batched, KV cache, stop on tags.

Each call left-pads the contexts, runs `model.generate` once for the batch and cuts every
row back to its own segment: up to the first stop token (EOS or a single-token closing
tag) or the end of the first stop string, and to that row's token limit. Forbidden
strings are banned at the level of text by `eapo.rollout.forbid`, whatever tokens would
spell them. The recorded log-probability
of a token is taken from the scores the sampler actually drew from (after temperature and
top-p), so it is the sampler's, not a recomputation.

Sampling uses a forked torch RNG seeded per call, so generation is reproducible from
(seed, call) and never disturbs the caller's RNG (a trainer's data order, for instance).
The model is switched to eval mode for the call and restored afterwards.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from eapo.protocol.prompt import end_ids
from eapo.rollout.backend import Generation, SamplingParams, check_limits
from eapo.rollout.forbid import BanIds, TextBan, TextBanProcessor

log = logging.getLogger(__name__)


class HFBackend:
    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        # A chat turn's end token (Qwen2's <|im_end|>, not its eos <|endoftext|>) ends the
        # episode even when the checkpoint's generation config forgets it.
        self.eos_token_ids = end_ids(tokenizer, getattr(model, "generation_config", None))
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else self.eos_token_ids[0]
        self.calls = 0
        self._bans: dict[tuple[str, ...], TextBanProcessor] = {}

    def _ban(self, strings: tuple[str, ...]) -> TextBanProcessor:
        """One processor per set of strings: building a ban reads the whole vocabulary once."""
        if strings not in self._bans:
            self._bans[strings] = TextBanProcessor(TextBan(self.tokenizer, strings))
        return self._bans[strings]

    @torch.no_grad()
    def generate(self, contexts: list[list[int]], max_new_tokens: list[int], params: SamplingParams) -> list[Generation]:
        if not contexts:
            return []
        check_limits(contexts, max_new_tokens)
        self.calls += 1
        device = next(self.model.parameters()).device
        width = max(len(c) for c in contexts)
        input_ids = torch.full((len(contexts), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(contexts), width), dtype=torch.long)
        for i, ctx in enumerate(contexts):  # left padding: every row ends at the same column
            input_ids[i, width - len(ctx):] = torch.tensor(ctx, dtype=torch.long)
            attention[i, width - len(ctx):] = 1
        stop_ids = tuple(sorted(set(params.stop_token_ids) | set(self.eos_token_ids)))
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max(1, max(max_new_tokens)),
            eos_token_id=list(stop_ids),
            pad_token_id=self.pad_token_id,
            output_scores=True,
            return_dict_in_generate=True,
            use_cache=True,
        )
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        processors = []
        if params.forbidden:
            # A text-level ban (eapo.rollout.forbid), not `bad_words_ids`: a real BPE spells a tag
            # through many id sequences, and transformers' ban also skips sequences that are a
            # single EOS id (our single-token closing tags are passed as EOS ids).
            processors.append(self._ban(params.forbidden))
        if params.banned_ids:
            processors.append(BanIds(params.banned_ids))
        if processors:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(processors)
        if params.stop_strings:
            kwargs.update(stop_strings=list(params.stop_strings), tokenizer=self.tokenizer)

        was_training = self.model.training
        self.model.eval()
        devices = [device.index or 0] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(params.seed)
                out = self.model.generate(
                    input_ids=input_ids.to(device), attention_mask=attention.to(device), **kwargs
                )
        finally:
            self.model.train(was_training)

        new = out.sequences[:, width:].cpu()  # (B, T_new)
        # (T_new, B, V) -> log-prob of the drawn token at each position, (B, T_new)
        scores = torch.stack(out.scores, dim=0).float().log_softmax(-1)
        drawn = scores.gather(-1, new.T.unsqueeze(-1).to(scores.device)).squeeze(-1).T.cpu()
        return [
            self._cut(new[i].tolist(), drawn[i].tolist(), max_new_tokens[i], stop_ids, params.stop_strings)
            for i in range(len(contexts))
        ]

    def _cut(
        self, ids: list[int], logprobs: list[float], limit: int, stop_ids: tuple[int, ...], stop_strings: tuple[str, ...]
    ) -> Generation:
        end, finish = len(ids), "length"
        for i, tok in enumerate(ids):
            if tok in stop_ids:
                end, finish = i + 1, ("eos" if tok in self.eos_token_ids else "stop")
                break
        if stop_strings:
            # A stop string spanning several tokens ends the segment at the first token whose
            # decoded prefix contains it. Read before the first stop id: a row that ended on a
            # string is padded after it, and with pad == eos (Qwen2) that pad looks like an EOS.
            for j in range(1, end + 1):
                text = self.tokenizer.decode(ids[:j], skip_special_tokens=False)
                if any(s in text for s in stop_strings):
                    if j < end or finish == "length":
                        end, finish = j, "stop"
                    break
        if end > limit:
            end, finish = limit, "length"
        return Generation(ids=ids[:end], logprobs=logprobs[:end], finish=finish)
