"""Case variants in the packed regex vocab, so a shipped model is right on raw (mixed-case) queries.

MediaPipe's RegexTokenizer (tasks/cc/text/tokenizers/regex_tokenizer.cc) splits on the delimiter and looks
each piece up as it is: it does not lower-case. The toolchain lower-cases first (toolchain/data.py), so a
raw "Running SHOES" was "running shoes" in training but [UNKNOWN, UNKNOWN] in MediaPipe. Its vocab file has
explicit `token id` lines, read into a token -> id map, so several spellings can share one id: we pack
`Capitalized` and `UPPER` forms of every word, plus every other cased form of a vocab word seen in the
build's train/val splits (e.g. `iPhone`), with the id of the lower-case word.

What this cannot fix (the app still gets the `lowercase()` note):
- a mixed-case spelling not seen in the splits (`RuNNing`): 2**len(word) forms cannot all be packed;
- non-ASCII capitals whose Python lower-case is ASCII (U+212A KELVIN SIGN -> 'k', U+0130 'İ' -> 'i' + a
  combining dot): in training they became ASCII word characters, on the device they are delimiters.
Measured in package: raw-query parity in MediaPipe before/after is recorded as `raw_without_case_variants`
and `raw` (see docs/guides/packaging.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from toolchain.base.atomic import write_text
from toolchain.data import DELIM_REGEX, SPECIAL_TOKENS, raw_split


def raw_words(text: str, delimiter: str = DELIM_REGEX) -> list[str]:
    """The pieces MediaPipe's RegexTokenizer looks up: split on the delimiter, case kept."""
    return raw_split(text, delimiter)


def case_variants(
    vocab: dict[str, int], texts: Iterable[str] = (), delimiter: str = DELIM_REGEX
) -> dict[str, int]:
    """Extra `token -> id` entries: Capitalized, UPPER and seen cased forms of each vocab word."""
    extra: dict[str, int] = {}

    def add(form: str, word: str) -> None:
        if form != word and form not in vocab:
            extra.setdefault(form, vocab[word])

    for word in vocab:
        if word in SPECIAL_TOKENS or not word.isascii():
            continue
        add(word[:1].upper() + word[1:], word)
        add(word.upper(), word)
    for text in texts:
        for form in raw_words(text, delimiter):
            word = form.lower()
            if word in vocab and word not in SPECIAL_TOKENS:
                add(form, word)
    return extra


def write_packed_vocab(path: Path, vocab: dict[str, int], extra: dict[str, int]) -> int:
    """The regex vocab file MediaPipe reads (`token id` per line), variants after the words; returns lines."""
    lines = [f"{tok} {idx}" for tok, idx in sorted(vocab.items(), key=lambda kv: kv[1])]
    lines += [f"{tok} {idx}" for tok, idx in sorted(extra.items(), key=lambda kv: (kv[1], kv[0]))]
    write_text(path, "\n".join(lines) + "\n")
    return len(lines)
