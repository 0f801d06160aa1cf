"""A causal LM loaded only to answer: a local expert, or the model behind `eapo serve-expert`.

Why apart from `load_policy`: a policy is trained and rolled out, so it keeps gradients,
is checked against the protocol's tags and always pads on the left; a model that only
answers is frozen (eval mode, no gradients) on one device, and its tokenizer stays as the
checkpoint ships it (a caller that batches sets its own padding).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def load_frozen(path: str, *, device: str | None = None, dtype: Any = "auto") -> tuple[Any, Any, str]:
    """`(model, tokenizer, device)` from a local folder or a hub id in the local cache;
    `device` None means cuda when there is one, else cpu. `dtype` goes to `from_pretrained`."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    model.to(device).eval().requires_grad_(False)
    return model, tokenizer, device
