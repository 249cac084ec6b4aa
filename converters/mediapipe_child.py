"""Runs inside the mediapipe==0.10.21 environment (stdlib + mediapipe only; never imports edgecomp).

It speaks the one child protocol (edgecomp_wire, put on PYTHONPATH by the host; converters/metadata.py is
the other side); the hello carries mediapipe's version. Ops:
  write_metadata {"model_in", "model_out", "kind": "regex"|"embedder"|"bert"|"bert_embedder" (+"_spm":
                  SentencePiece tokenizer metadata, "vocab" the .model file), "vocab",
                  "labels", "delim", "input_names": [ids, mask, segment] (bert kinds: TFLite tensor names),
                  "info": {name, version, description, author, license}} -> {"metadata_json": str}
  classify {"model", "texts": [...], "max_results": k | null} -> {"results": [[[index, score], ...], ...]}
      (each result is MediaPipe's category list in its own order: element 0 is what the app shows first;
      max_results as the app sets it, e.g. 10 for a retrieval model's top 10; null: every category)
  embed {"model", "texts": [...]} -> {"embeddings": [[float, ...], ...]}
Any failure is an `ok: false` reply; the parent decides what it means.
"""

from __future__ import annotations

import os
import time
import zipfile

import edgecomp_wire as wire


class _FixedZipTime:
    """zipfile dates entries with time.localtime(); pin it so the same inputs give the same model bytes."""

    def __getattr__(self, name: str):
        return getattr(time, name)

    @staticmethod
    def localtime(*_args) -> time.struct_time:
        return time.struct_time((1980, 1, 1, 0, 0, 0, 1, 1, 0))


def _write_metadata(req: dict) -> dict:
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_info,
        metadata_writer,
        text_classifier,
    )

    with open(req["model_in"], "rb") as f:
        buf = bytearray(f.read())
    kind = req["kind"]
    if kind.endswith("_spm"):
        tokenizer = metadata_writer.SentencePieceTokenizer(req["vocab"])
        kind = kind.removesuffix("_spm")
    elif kind.startswith("bert"):
        tokenizer = metadata_writer.BertTokenizer(req["vocab"])
    if kind == "regex":
        tok = metadata_writer.RegexTokenizer(req["delim"], req["vocab"])
        labels = metadata_writer.Labels().add(req["labels"])
        writer = text_classifier.MetadataWriter.create_for_regex_model(buf, tok, labels).writer
    elif kind == "embedder":
        # TextEmbedder: regex-tokenized text in, a feature vector out.
        writer = metadata_writer.MetadataWriter.create(buf)
        writer.add_regex_text_input(metadata_writer.RegexTokenizer(req["delim"], req["vocab"]))
        writer.add_feature_output(name="embedding", description="Text embedding vector.")
    elif kind == "bert":
        # metadata names ids / mask / segment_ids, bound to the inputs by tensor name; vocab packed
        labels = metadata_writer.Labels().add(req["labels"])
        writer = text_classifier.MetadataWriter.create_for_bert_model(
            buf, tokenizer, labels, *req["input_names"]
        ).writer
    elif kind == "bert_embedder":
        # No BERT TextEmbedder writer exists: TextEmbedder reads the same BERT input metadata.
        writer = metadata_writer.MetadataWriter.create(buf)
        writer.add_bert_text_input(tokenizer, *req["input_names"])
        writer.add_feature_output(name="embedding", description="Text embedding vector.")
    else:
        raise ValueError(f"unknown metadata kind {kind!r}")
    info = req["info"]
    writer._general_md = metadata_info.GeneralMd(  # add_general_info only takes name and description
        name=info["name"],
        version=info["version"],
        description=info["description"],
        author=info["author"],
        licenses=info["license"],
    )
    zipfile.time = _FixedZipTime()  # type: ignore[attr-defined]
    model, metadata_json = writer.populate()
    tmp = req["model_out"] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model)
    os.replace(tmp, req["model_out"])
    return {"metadata_json": metadata_json}


_TASKS: dict = {}


def _task(kind: str, model: str, max_results: int | None = None):
    from mediapipe.tasks.python.core import base_options
    from mediapipe.tasks.python.text import text_classifier, text_embedder

    key = (kind, model, max_results)
    if key not in _TASKS:
        opts = base_options.BaseOptions(model_asset_path=model)
        if kind == "classify":
            limit = {} if max_results is None else {"max_results": int(max_results)}
            _TASKS[key] = text_classifier.TextClassifier.create_from_options(
                text_classifier.TextClassifierOptions(base_options=opts, **limit)
            )
        else:
            _TASKS[key] = text_embedder.TextEmbedder.create_from_options(
                text_embedder.TextEmbedderOptions(base_options=opts)
            )
    return _TASKS[key]


def _classify(req: dict) -> dict:
    clf = _task("classify", req["model"], req.get("max_results"))
    results = []
    for text in req["texts"]:
        cats = clf.classify(text).classifications[0].categories
        results.append([[c.index, c.score] for c in cats])
    return {"results": results}


def _embed(req: dict) -> dict:
    emb = _task("embed", req["model"])
    out = [list(map(float, emb.embed(t).embeddings[0].embedding)) for t in req["texts"]]
    return {"embeddings": out}


HANDLERS = {"write_metadata": _write_metadata, "classify": _classify, "embed": _embed}


def main() -> None:
    wire.open_channel()  # before importing mediapipe: its native chatter on fd 1 goes to stderr
    import mediapipe

    wire.serve(
        HANDLERS,
        {
            "runtime": "mediapipe",
            "module": "mediapipe",
            "version": mediapipe.__version__,
            "mediapipe": mediapipe.__version__,
        },
    )


if __name__ == "__main__":
    main()
