"""A byte tokenizer for the tiny built-in models, so tests and smoke runs need no model hub.

Why bytes with zero BPE merges: every byte is one token whatever the pre-tokenizer does, so
the ids survive any rebuild of the pre-tokenizer by `transformers` (see below), and a tiny
model can write any string. The protocol tags (`Tags.single_token_tags()`) are added as
single *non-special* tokens: the policy emits a tag in one step, stopping on a tag is one
token id, and `decode(skip_special_tokens=True)` keeps them visible for the parser. The
chat markers and end/pad tokens are special, as in Qwen's ChatML.

Why the normaliser and pre-tokenizer are Qwen2's: `AutoTokenizer` maps model_type `qwen2`
to `Qwen2Tokenizer` whatever `tokenizer_config.json` says (transformers 5 lists `qwen2` in
`MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS`), and `Qwen2Tokenizer` rebuilds the pipeline
from the saved vocabulary: NFC normalisation, a digit-splitting regex, then byte level. The
regex is harmless with zero merges; NFC is not (decomposed "e" + U+0301 would encode to
different ids after a reload). So the tokenizer is built with that same pipeline, and a
reloaded tokenizer is token-for-token the one built here. The cost: text is NFC-normalised
before encoding, exactly as with a real Qwen tokenizer.

Not covered: training a BPE (no merges means longer sequences; fine for tiny models).
"""

from __future__ import annotations

import logging

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast

from eapo.protocol.tags import Tags

logger = logging.getLogger(__name__)

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"  # distinct from eos, so padding is never mistaken for a stop
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (EOS_TOKEN, PAD_TOKEN, IM_START, IM_END)

# The split regex of transformers' Qwen2Tokenizer (same pipeline, see the module docstring).
_QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# ChatML, as Qwen uses it. `add_generation_prompt` opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def byte_to_unicode() -> dict[int, str]:
    """The GPT-2 byte-level alphabet: each byte maps to a printable unicode character.

    Printable Latin-1 bytes map to themselves; the others to code points from 256 up, in
    byte order. This is the mapping the `ByteLevel` pre-tokenizer and decoder use.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def build_tokenizer(tags: Tags = Tags()) -> PreTrainedTokenizerFast:
    """Byte-level BPE with zero merges: ids 0..255 are the bytes, then the special tokens
    (`<|endoftext|>` eos, `<|pad|>` pad, `<|im_start|>`, `<|im_end|>`), then one
    non-special token per string of `tags.single_token_tags()`, in that order.

    The tokenizer pads on the left (generation appends on the right) and carries a ChatML
    chat template. Both persist through `save_pretrained`.
    """
    tag_strings = tags.single_token_tags()
    clash = set(tag_strings) & set(SPECIAL_TOKENS)
    if clash:
        raise ValueError(f"tag strings {sorted(clash)} collide with the tokenizer's special tokens; rename the tags")
    if len(set(tag_strings)) != len(tag_strings):
        raise ValueError(f"single-token tags must be distinct, got {tag_strings}")

    vocab = {ch: b for b, ch in byte_to_unicode().items()}  # byte value == token id
    # The BPE options are Qwen2Tokenizer's too, so the whole backend pipeline, not only the
    # ids, is unchanged by a reload (a test compares the serialised pipelines).
    backend = Tokenizer(
        BPE(
            vocab=vocab,
            merges=[],
            unk_token=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    # normalized=False: added tokens match the raw text, never its NFC form.
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in tag_strings])

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        # Listed as special tokens too (as Qwen's tokenizer_config does), so
        # `all_special_tokens` and `all_special_ids` name them.
        extra_special_tokens=[IM_START, IM_END],
        padding_side="left",  # passed to the constructor so tokenizer_config.json keeps it
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )
    logger.debug("built byte tokenizer: %d tokens, %d single-token tags", len(tokenizer), len(tag_strings))
    return tokenizer
