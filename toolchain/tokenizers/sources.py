"""Reading what the user has: a tokenizer.json, a vocab.txt of either kind, a Hugging Face model folder.

- `--tokenizer tokenizer.json` (data.tokenizer): a Hugging Face WordPiece tokenizer -> `wordpiece`; a
  Unigram or BPE one (SentencePiece as transformers represents it, XLM-R style) -> `sentencepiece`, with
  the .model file beside it (sentencepiece.bpe.model, spiece.model, ...) kept for the device.
- `--vocab vocab.txt` (data.vocab): a BERT vocab (one token per line with [CLS], [SEP], [PAD] and `##`
  continuation pieces) -> `wordpiece`, lower-casing from tokenizer_config.json beside it when present
  (`do_lower_case`, `strip_accents`), else BERT-uncased defaults; a 'token id' vocab -> `regex`, unchanged.
- Neither given: tokenizer.json, then vocab.txt, next to the model or inside its folder.
- The query length (`query_length`), decided before the tokenizer is made: the model's own fixed length;
  data.seq_len fixes a dynamic one (without it: a DataError); for the recipe's source a data.seq_len that
  differs from the model's fixed length is a DataError, while a distillation teacher keeps its own length.
- A Hugging Face-style folder (`edgecomp convert query-embedder/`): model.onnx + tokenizer files +
  config.json; labels from labels.txt, else config.json's id2label (transformers' placeholder names
  LABEL_0, LABEL_1, ... mean "no labels" and are ignored).
Nothing found is not an error here: the caller decides (a float conversion can run without a tokenizer).
`load_saved` restores the kind a build recorded from the files `save` wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from toolchain import data as d
from toolchain.base.errors import DataError, InputFileError
from toolchain.base.text import read_utf8
from toolchain.base.types import TokenizerKind
from toolchain.tokenizers.interface import TextTokenizer
from toolchain.tokenizers.regex import RegexTokenizer
from toolchain.tokenizers.sentencepiece import MODEL_TYPES, SPM_FILE, SentencePieceTokenizer, spm_beside
from toolchain.tokenizers.wordpiece import WordPieceTokenizer, bert_json_from_vocab

TOKENIZER_JSON, VOCAB_TXT, CONFIG_JSON, TOKENIZER_CONFIG = (
    "tokenizer.json",
    "vocab.txt",
    "config.json",
    "tokenizer_config.json",
)
FOLDER_MODEL = "model.onnx"
_PLACEHOLDER_LABEL = re.compile(r"LABEL_\d+")


def folder_of(source: Path) -> Path:
    return source if source.is_dir() else source.parent


def folder_model(source: Path) -> Path:
    """The ONNX file of a source: the path itself, or model.onnx inside a Hugging Face-style folder."""
    if not source.is_dir():
        return source
    found = source / FOLDER_MODEL
    if not found.is_file():
        onnx = sorted(p.name for p in source.glob("*.onnx"))
        raise InputFileError(
            f"{source} has no {FOLDER_MODEL}" + (f" (found {', '.join(onnx)})" if onnx else ""),
            hint="a model folder holds model.onnx + tokenizer.json or vocab.txt (+ config.json); "
            "or pass the .onnx file itself",
        )
    return found


def is_wordpiece_vocab(path: Path) -> bool:
    """A BERT vocab: one token per line, [CLS], [SEP], [PAD] present, and `##` continuation pieces."""
    lines = read_utf8(path, "vocab").splitlines()
    tokens = {ln.rstrip("\r") for ln in lines}
    return {"[CLS]", "[SEP]", "[PAD]"} <= tokens and any(t.startswith("##") for t in tokens)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_utf8(path, "JSON", InputFileError))
    except json.JSONDecodeError as err:
        raise InputFileError(f"{path} is not valid JSON: {err.msg} (line {err.lineno})") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a JSON object")
    return data


def lowercase_options(folder: Path) -> tuple[bool, bool | None]:
    """(lowercase, strip_accents) from tokenizer_config.json; BERT-uncased defaults without it."""
    path = folder / TOKENIZER_CONFIG
    if not path.is_file():
        return True, None
    cfg = _read_json(path)
    return bool(cfg.get("do_lower_case", True)), cfg.get("strip_accents")


def tokenizer_from_json(path: Path, seq_len: int, spm_model: Path | None = None) -> TextTokenizer:
    """A tokenizer.json by its model type: WordPiece -> `wordpiece`, Unigram/BPE -> `sentencepiece`."""
    if not path.is_file():
        raise InputFileError(f"tokenizer file not found: {path}", hint="check --tokenizer")
    text = read_utf8(path, "tokenizer")
    try:
        model_type = (json.loads(text).get("model") or {}).get("type")
    except (json.JSONDecodeError, AttributeError):
        model_type = None  # WordPieceTokenizer names the problem
    if model_type in MODEL_TYPES:
        return SentencePieceTokenizer(text, seq_len, str(path), spm_model or spm_beside(path), path.parent)
    return WordPieceTokenizer(text, seq_len, str(path))


def wordpiece_from_files(tokenizer_json: Path | None, vocab: Path | None, seq_len: int) -> TextTokenizer:

    if tokenizer_json is not None:
        return tokenizer_from_json(tokenizer_json, seq_len)
    assert vocab is not None
    lower, strip = lowercase_options(vocab.parent)
    return WordPieceTokenizer(bert_json_from_vocab(vocab, lower, strip), seq_len, str(vocab))


def vocab_tokenizer(vocab: Path, seq_len: int) -> TextTokenizer:
    """A vocab.txt of either kind: BERT WordPiece, or MediaPipe's 'token id' regex vocab."""

    if not vocab.is_file():
        raise InputFileError(
            f"vocab file not found: {vocab}", hint="pass --vocab or put vocab.txt next to the model"
        )
    if is_wordpiece_vocab(vocab):
        return wordpiece_from_files(None, vocab, seq_len)
    return RegexTokenizer(d.Tokenizer(d.load_vocab(vocab), seq_len))


def query_length(model_len: int | None, seq_len: int | None, strict: bool = True) -> int:
    """Tokens per query by the one rule above (`model_len` None: the model's length is dynamic)."""
    if strict and model_len is not None and seq_len is not None and seq_len != model_len:
        raise DataError(
            f"wrong input length: the model takes {model_len} tokens, the recipe says {seq_len}",
            hint=f"set data.seq_len to {model_len} or leave it unset",
        )
    length = model_len or seq_len
    if length is None:
        raise DataError("the model's input length is dynamic", hint="set data.seq_len (e.g. --seq-len 32)")
    return length


def find_tokenizer(
    tokenizer_json: Path | None, vocab: Path | None, source: Path, seq_len: int
) -> TextTokenizer | None:
    """The tokenizer the recipe names, else the one beside the model; None when there is none at all."""
    if tokenizer_json is not None:
        return wordpiece_from_files(tokenizer_json, None, seq_len)
    if vocab is not None:
        return vocab_tokenizer(vocab, seq_len)
    folder = folder_of(source)
    if (folder / TOKENIZER_JSON).is_file():
        return wordpiece_from_files(folder / TOKENIZER_JSON, None, seq_len)
    if (folder / VOCAB_TXT).is_file():
        return vocab_tokenizer(folder / VOCAB_TXT, seq_len)
    return None


def config_labels(source: Path) -> list[str] | None:
    """Labels in output order from config.json's id2label; None without one or with placeholder names."""
    path = folder_of(source) / CONFIG_JSON
    if not path.is_file():
        return None
    id2label = _read_json(path).get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        return None
    try:
        ordered = [str(v) for _, v in sorted((int(k), v) for k, v in id2label.items())]
    except ValueError:
        raise DataError(f"{path}: id2label keys must be integers") from None
    if all(_PLACEHOLDER_LABEL.fullmatch(lab) for lab in ordered):
        return None
    return ordered


def load_saved(
    build_dir: Path, kind: TokenizerKind, seq_len: int, delimiter: str | None = None
) -> TextTokenizer | None:
    """The tokenizer a build recorded (report `tokenizer` kind and seq_len + the files `save` wrote)."""
    if kind == TokenizerKind.NONE:
        return None
    wanted = VOCAB_TXT if kind == TokenizerKind.REGEX else TOKENIZER_JSON
    path = Path(build_dir) / wanted
    if not path.is_file():
        raise InputFileError(
            f"{build_dir} is not a complete build: {wanted} is missing (its {kind} tokenizer)",
            hint="run `edgecomp convert --recipe ...` to make the build",
        )
    if kind == TokenizerKind.SENTENCEPIECE:
        spm = Path(build_dir) / SPM_FILE
        return tokenizer_from_json(path, seq_len, spm if spm.is_file() else None)
    if kind == TokenizerKind.WORDPIECE:
        return wordpiece_from_files(path, None, seq_len)

    return RegexTokenizer(d.Tokenizer(d.load_vocab(path), seq_len, delimiter or d.DELIM_REGEX))
