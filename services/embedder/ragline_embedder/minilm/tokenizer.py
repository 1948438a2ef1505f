"""The MiniLM WordPiece tokenizer, configured the way sentence-transformers uses it."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

# sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (sentence_bert_config.json).
MAX_TOKENS = 256


def load_tokenizer(
    model_dir: Path, max_tokens: int = MAX_TOKENS, *, pad_to_longest: bool = True
) -> Tokenizer:
    """Load tokenizer.json, replacing its truncation and padding settings.

    The shipped file truncates at 128 and pads every input to a fixed 128; both differ from
    sentence-transformers (256, pad to the longest in the batch) and push long texts to
    cosine ~0.82 from the reference. With pad_to_longest=False nothing is padded, for callers
    that build their own padded batches.
    """
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_tokens)
    if pad_to_longest:
        pad_id, pad_token = pad_settings(tokenizer)
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)  # length=None: longest
    else:
        tokenizer.no_padding()
    return tokenizer


def pad_settings(tokenizer: Tokenizer) -> tuple[int, str]:
    """The pad id and token the file declares ([PAD] = 0 for this vocabulary)."""
    padding = tokenizer.padding or {}
    pad_token = str(padding.get("pad_token", "[PAD]"))
    pad_id = padding.get("pad_id")
    if pad_id is None:
        pad_id = tokenizer.token_to_id(pad_token)
    return int(pad_id or 0), pad_token
