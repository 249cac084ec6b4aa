"""What a model folder is, read from its files alone (no model loaded, no code run): `read_folder`.

The kinds (FolderKind), in the order they are tried:
- `--onnx-file F` (source.onnx_file): that ONNX file of the folder, converted as it is (hub-onnx);
- model.onnx at the top: the ONNX folder route as before (onnx);
- config.json + weights (model.safetensors, sharded model-*.safetensors with their index, or the pickle
  pytorch_model.bin): a transformers folder, or a sentence-transformers one when modules.json is there;
  edgecomp exports it to ONNX itself (toolchain/sources/hub_export.py); an onnx/ beside the weights is
  named in a notice with the flag that picks one;
- onnx/*.onnx alone: the Hub's ONNX layout; model.onnx is picked among several, with a notice.
What is refused, always: custom code (`auto_map` in config.json or tokenizer_config.json, a modules.json
module that is not one of sentence-transformers' own), sentence-transformers modules or pooling modes the
export does not reproduce (Dense, weightedmean, ...), architectures that are neither a sequence classifier
nor a bare encoder. A pickle (pytorch_model.bin, no safetensors) needs --trust-model-code. Malformed JSON
is one line naming the file.

Inputs: tokenizer_config.json `model_input_names`, else by model type (DistilBERT, RoBERTa, XLM-R, MPNet,
CamemBERT take input_ids + attention_mask; the rest also token_type_ids). A bare encoder without
modules.json is mean-pooled without normalisation, as sentence-transformers loads a plain model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from converters.keras_tflite import TRUST_FLAG
from toolchain.base.errors import InputFileError, UntrustedModelError
from toolchain.base.types import FolderKind
from toolchain.report.hub import HubFolderInfo
from toolchain.tokenizers.sources import config_labels

CONFIG, MODULES, ST_CONFIG = "config.json", "modules.json", "sentence_bert_config.json"
SAFETENSORS, PICKLE = "model.safetensors", "pytorch_model.bin"
SAFETENSORS_INDEX, PICKLE_INDEX = "model.safetensors.index.json", "pytorch_model.bin.index.json"
HUB_ONNX_DIR, PREFERRED_ONNX = "onnx", "model.onnx"
TWO_INPUT_TYPES = {"distilbert", "roberta", "xlm-roberta", "camembert", "mpnet", "longformer"}
ST_PREFIX = "sentence_transformers.models."
ST_MODULES = {"Transformer", "Pooling", "Normalize"}
POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                 "pooling_mode_max_tokens": "max"}  # fmt: skip
UNSUPPORTED_POOLING = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                       "pooling_mode_lasttoken")  # fmt: skip
VOCAB_FILES = (
    ("vocab.txt", "wordpiece"),
    ("sentencepiece.bpe.model", "sentencepiece (bpe)"),
    ("spiece.model", "sentencepiece (unigram)"),
    ("tokenizer.model", "sentencepiece"),
)
MAX_DEFAULT_LEN = 4096  # a tokenizer_config model_max_length above this is transformers' "no limit"
CUSTOM_CODE_HINT = (
    "edgecomp never runs a model's own Python code: export it to ONNX yourself and convert that"
)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputFileError(
            f"{path} is not valid JSON: {err}".splitlines()[0][:300],
            hint="the folder is damaged: download or save it again",
        ) from None


def _object(path: Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a JSON object", hint="the folder is damaged: save it again")
    return data


def is_model_folder(path: Path) -> bool:
    """A folder read_folder can make sense of (config.json + weights, or onnx/*.onnx)."""
    if not path.is_dir() or (path / "saved_model.pb").is_file():
        return False
    return bool(_weights(path)[0]) or bool(_onnx_files(path))


def _weights(folder: Path) -> tuple[list[str], str | None]:
    """The weights files and their format: safetensors first; the pickle only when there is no other."""
    for single, index, fmt in (
        (SAFETENSORS, SAFETENSORS_INDEX, "safetensors"),
        (PICKLE, PICKLE_INDEX, "pickle"),
    ):
        if (folder / single).is_file():
            return [single], fmt
        if (folder / index).is_file():
            shards = sorted({str(v) for v in (_object(folder / index).get("weight_map") or {}).values()})
            return [index, *shards], fmt
    return [], None


def _onnx_files(folder: Path) -> list[str]:
    sub = folder / HUB_ONNX_DIR
    return [f"{HUB_ONNX_DIR}/{p.name}" for p in sorted(sub.glob("*.onnx"))] if sub.is_dir() else []


def tokenizer_kind(folder: Path) -> tuple[str, str | None]:
    """(kind, file): from tokenizer.json's model type, else the vocab files present."""
    tj = folder / "tokenizer.json"
    if tj.is_file():
        model = _object(tj).get("model") or {}
        kind = {"WordPiece": "wordpiece", "Unigram": "sentencepiece (unigram)", "BPE": "bpe"}.get(
            str(model.get("type")), f"other ({model.get('type')})"
        )
        return kind, tj.name
    for name, kind in VOCAB_FILES:
        if (folder / name).is_file():
            return kind, name
    return "none", None


def _refuse_custom_code(folder: Path, config: dict[str, Any]) -> None:
    tok_cfg = folder / "tokenizer_config.json"
    for name, data in (
        (CONFIG, config),
        ("tokenizer_config.json", _object(tok_cfg) if tok_cfg.is_file() else {}),
    ):
        code = [k for k in ("auto_map", "trust_remote_code") if k in data]
        if code:
            raise UntrustedModelError(
                f"{folder / name} asks for the model's own Python code ({code[0]}); refused, with or without "
                f"{TRUST_FLAG}",
                hint=CUSTOM_CODE_HINT,
            )


def _sentence_modules(folder: Path) -> tuple[str | None, bool, list[str]]:
    """(pooling, normalize, notes) from modules.json and the Pooling module's config.json."""
    modules = read_json(folder / MODULES)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise InputFileError(f"{folder / MODULES}: expected a list of modules", hint="save the folder again")
    pooling, normalize, notes = None, False, []
    for m in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = str(m.get("type", ""))
        short = kind.removeprefix(ST_PREFIX)
        if not kind.startswith(ST_PREFIX) or short not in ST_MODULES:
            known = kind.startswith(ST_PREFIX)
            raise (InputFileError if known else UntrustedModelError)(
                f"{folder / MODULES}: module {kind!r} is not exported by edgecomp"
                + ("" if known else " (custom module code is never run)"),
                hint=f"edgecomp exports {', '.join(sorted(ST_MODULES))}; "
                + ("export the model to ONNX yourself" if known else CUSTOM_CODE_HINT),
            )
        if short == "Pooling":
            cfg_path = folder / str(m.get("path", "")) / CONFIG
            cfg = _object(cfg_path) if cfg_path.is_file() else {"pooling_mode_mean_tokens": True}
            on = [mode for key, mode in POOLING_MODES.items() if cfg.get(key)]
            odd = [key for key in UNSUPPORTED_POOLING if cfg.get(key)]
            if odd or len(on) != 1:
                raise InputFileError(
                    f"{cfg_path}: pooling {', '.join(odd or on) or 'none'} is not supported",
                    hint="edgecomp exports exactly one of mean, cls or max pooling",
                )
            pooling = on[0]
        if short == "Normalize":
            normalize = True
    if pooling is None:
        pooling = "cls"
        notes.append("modules.json has no Pooling module: the first token's vector is the embedding")
    return pooling, normalize, notes


def _inputs(folder: Path, model_type: str | None) -> list[str]:
    tok_cfg = folder / "tokenizer_config.json"
    names = _object(tok_cfg).get("model_input_names") if tok_cfg.is_file() else None
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return list(names)
    two = ["input_ids", "attention_mask"]
    return two if model_type in TWO_INPUT_TYPES else [*two, "token_type_ids"]


def folder_seq_len(folder: Path, config: dict[str, Any] | None = None) -> tuple[int | None, str | None]:
    """The folder's own query length: sentence_bert_config max_seq_length, tokenizer_config
    model_max_length (when it is a real limit), config max_position_embeddings."""
    candidates = [(ST_CONFIG, "max_seq_length"), ("tokenizer_config.json", "model_max_length")]
    for name, key in candidates:
        if (folder / name).is_file():
            value = _object(folder / name).get(key)
            if isinstance(value, int) and 1 < value <= MAX_DEFAULT_LEN:
                return value, f"{name} {key}"
    if config is None:
        config = _object(folder / CONFIG) if (folder / CONFIG).is_file() else {}
    value = config.get("max_position_embeddings")
    return (
        (value, f"{CONFIG} max_position_embeddings") if isinstance(value, int) and value > 1 else (None, None)
    )


def read_folder(folder: Path, onnx_file: Path | None = None, trust_model_code: bool = False) -> HubFolderInfo:
    """The folder as the module docstring reads it; raises on what is refused."""
    onnx_files = _onnx_files(folder)
    tok_kind, tok_file = tokenizer_kind(folder)
    common = {
        "path": str(folder),
        "tokenizer": tok_kind,
        "tokenizer_file": tok_file,
        "onnx_files": onnx_files,
    }
    labels = config_labels(folder) or []
    if onnx_file is not None or (folder / PREFERRED_ONNX).is_file():
        chosen = _chosen_onnx(folder, onnx_file) if onnx_file is not None else PREFERRED_ONNX
        kind = FolderKind.HUB_ONNX if onnx_file is not None else FolderKind.ONNX
        return HubFolderInfo(kind=kind, inputs=[], onnx_file=chosen, labels=labels, **common)
    weights, fmt = _weights(folder)
    if weights:
        return _weights_folder(folder, weights, fmt, trust_model_code, labels, common)
    if onnx_files:
        chosen = PREFERRED_ONNX if f"{HUB_ONNX_DIR}/{PREFERRED_ONNX}" in onnx_files else onnx_files[0]
        chosen = chosen if "/" in chosen else f"{HUB_ONNX_DIR}/{chosen}"
        notes = [pick_notice(folder, onnx_files, chosen)] if len(onnx_files) > 1 else []
        return HubFolderInfo(
            kind=FolderKind.HUB_ONNX, inputs=[], onnx_file=chosen, labels=labels, notes=notes, **common
        )
    raise InputFileError(
        f"{folder} holds no model: no model.onnx, onnx/*.onnx, or config.json with model.safetensors",
        hint="pass a Hugging Face model folder (as save_pretrained writes it), a SavedModel dir or a file",
    )


def pick_notice(folder: Path, onnx_files: list[str], chosen: str) -> str:
    others = ", ".join(f for f in onnx_files if f != chosen)
    return (
        f"{folder.name}/ has {len(onnx_files)} ONNX files: converting {chosen} "
        f"(also {others}; pick one with --onnx-file)"
    )


def _chosen_onnx(folder: Path, onnx_file: Path) -> str:
    path = onnx_file if onnx_file.is_absolute() else folder / onnx_file
    try:
        rel = path.resolve().relative_to(folder.resolve())
    except ValueError:
        raise InputFileError(
            f"--onnx-file {onnx_file} is not inside {folder}", hint="give a path relative to the folder"
        ) from None
    if not path.is_file() or path.suffix != ".onnx":
        found = ", ".join(_onnx_files(folder)) or "none"
        raise InputFileError(f"--onnx-file {onnx_file}: no such .onnx in {folder}", hint=f"found: {found}")
    return rel.as_posix()


def _weights_folder(
    folder: Path, weights: list[str], fmt: str | None, trust: bool, labels: list[str], common: dict
) -> HubFolderInfo:
    if not (folder / CONFIG).is_file():
        raise InputFileError(
            f"{folder} has weights but no {CONFIG}", hint="save the folder with save_pretrained"
        )
    config = _object(folder / CONFIG)
    _refuse_custom_code(folder, config)
    if fmt == "pickle" and not trust:
        raise UntrustedModelError(
            f"{folder / weights[0]} is a pickle: loading it can run code stored in it",
            hint=f"pass {TRUST_FLAG} only if you trust its author, or save the model as safetensors "
            "(save_pretrained's default)",
        )
    archs = config.get("architectures") or []
    arch = str(archs[0]) if isinstance(archs, list) and archs else None
    model_type = str(config["model_type"]) if isinstance(config.get("model_type"), str) else None
    sentence = (folder / MODULES).is_file()
    notes: list[str] = []
    if sentence:
        kind, head, output = FolderKind.SENTENCE_TRANSFORMERS, "encoder", "sentence_embedding"
        pooling, normalize, notes = _sentence_modules(folder)
        labels = []
    elif arch and arch.endswith("ForSequenceClassification"):
        kind, head, output, pooling, normalize = FolderKind.TRANSFORMERS, "classifier", "logits", None, False
    elif arch and arch.endswith("Model"):
        kind, head, output, pooling, normalize = (
            FolderKind.TRANSFORMERS,
            "encoder",
            "sentence_embedding",
            "mean",
            False,
        )
        notes.append(
            "a bare encoder without modules.json: mean pooling, no normalisation "
            "(as sentence-transformers loads it)"
        )
        labels = []
    else:
        raise InputFileError(
            f"{folder / CONFIG}: architecture {arch or 'not given'} is neither a sequence classifier "
            "nor an encoder",
            hint="edgecomp takes *ForSequenceClassification, a bare encoder (e.g. BertModel) or a "
            "sentence-transformers folder",
        )
    seq_len, seq_from = folder_seq_len(folder, config)
    if onnx_files := common["onnx_files"]:
        notes.append(
            f"exporting from {weights[0]}; the folder's {', '.join(onnx_files)} convert as they are "
            "with --onnx-file"
        )
    return HubFolderInfo(
        kind=kind, architecture=arch, model_type=model_type, head=head, inputs=_inputs(folder, model_type),
        output=output, pooling=pooling, normalize=normalize, labels=labels, weights=weights,
        weights_format=fmt, seq_len=seq_len, seq_len_from=seq_from, notes=notes, **common,
    )  # fmt: skip


def inspect_folder(folder: Path) -> HubFolderInfo:
    """`edgecomp inspect DIR`: the folder as convert would read it, before anything is converted (a pickle
    is described, with the flag it needs; custom code is still refused), with the ONNX file's own inputs
    and output when one is converted as it is."""
    info = read_folder(folder, None, trust_model_code=True)
    notes, update = list(info.notes), {}
    if info.weights_format == "pickle":
        notes.append(f"{info.weights[0]} is a pickle: convert needs {TRUST_FLAG}")
    if info.onnx_file is not None:
        update["inputs"], outputs = onnx_io(folder / info.onnx_file)
        update["output"] = outputs[0] if outputs else None
    if (
        info.seq_len is None and info.kind != FolderKind.ONNX
    ):  # a model.onnx folder needs --seq-len, as before
        update["seq_len"], update["seq_len_from"] = folder_seq_len(folder)
    return info.model_copy(update={**update, "notes": notes})


def onnx_io(path: Path) -> tuple[list[str], list[str]]:
    """An ONNX file's graph input names (initializers left out) and output names; weights not loaded."""
    import onnx  # reason: heavy, and only `inspect DIR` on an ONNX folder needs it

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as err:  # onnx raises DecodeError and friends for a damaged file
        raise InputFileError(f"{path} is not a readable ONNX model: {err}".splitlines()[0][:300]) from None
    weights = {t.name for t in graph.initializer}
    return [i.name for i in graph.input if i.name not in weights], [o.name for o in graph.output]
