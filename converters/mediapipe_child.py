"""Runs inside the mediapipe==0.10.21 environment (stdlib + mediapipe only; never imports edgecomp).

Protocol: prints {"event": "ready", ...} once, then answers one JSON line per request line on stdin:
  {"cmd": "write_metadata", "model_in", "model_out", "kind": "regex"|"embedder", "vocab", "labels",
   "delim", "info": {name, version, description, author, license}} -> {"ok": true, "metadata_json": str}
  {"cmd": "classify", "model", "texts": [...]} -> {"ok": true, "results": [[[index, score], ...], ...]}
      (each result is MediaPipe's category list in its own order: element 0 is what the app shows first)
  {"cmd": "embed", "model", "texts": [...]} -> {"ok": true, "embeddings": [[float, ...], ...]}
Any failure answers {"ok": false, "error": "...", "stage": cmd}; the parent decides what it means.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import zipfile


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
    if kind == "regex":
        tok = metadata_writer.RegexTokenizer(req["delim"], req["vocab"])
        labels = metadata_writer.Labels().add(req["labels"])
        writer = text_classifier.MetadataWriter.create_for_regex_model(buf, tok, labels).writer
    elif kind == "embedder":
        # TextEmbedder: regex-tokenized text in, a feature vector out.
        writer = metadata_writer.MetadataWriter.create(buf)
        writer.add_regex_text_input(metadata_writer.RegexTokenizer(req["delim"], req["vocab"]))
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
    return {"ok": True, "metadata_json": metadata_json}


_TASKS: dict = {}


def _task(kind: str, model: str):
    from mediapipe.tasks.python.core import base_options
    from mediapipe.tasks.python.text import text_classifier, text_embedder

    key = (kind, model)
    if key not in _TASKS:
        opts = base_options.BaseOptions(model_asset_path=model)
        if kind == "classify":
            _TASKS[key] = text_classifier.TextClassifier.create_from_options(
                text_classifier.TextClassifierOptions(base_options=opts)
            )
        else:
            _TASKS[key] = text_embedder.TextEmbedder.create_from_options(
                text_embedder.TextEmbedderOptions(base_options=opts)
            )
    return _TASKS[key]


def _classify(req: dict) -> dict:
    clf = _task("classify", req["model"])
    results = []
    for text in req["texts"]:
        cats = clf.classify(text).classifications[0].categories
        results.append([[c.index, c.score] for c in cats])
    return {"ok": True, "results": results}


def _embed(req: dict) -> dict:
    emb = _task("embed", req["model"])
    out = [list(map(float, emb.embed(t).embeddings[0].embedding)) for t in req["texts"]]
    return {"ok": True, "embeddings": out}


HANDLERS = {"write_metadata": _write_metadata, "classify": _classify, "embed": _embed}


def main() -> None:
    # The protocol gets a private copy of fd 1; Python and native chatter (fd 1) go to stderr instead.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import mediapipe

    out.write(json.dumps({"event": "ready", "mediapipe": mediapipe.__version__}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = HANDLERS[req["cmd"]](req)
        except Exception as err:  # reported to the parent, which raises a typed error
            tail = traceback.format_exc().strip().splitlines()[-1]
            reply = {"ok": False, "stage": req.get("cmd"), "error": f"{type(err).__name__}: {err}"[:800]}
            reply["trace"] = tail[:300]
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
