"""Runs inside the isolated PyTorch environment (stdlib + torch + transformers; never imports edgecomp).

It speaks the one child protocol (edgecomp_wire, put on PYTHONPATH by the host; converters/hf_export.py
is the other side). The hello carries torch's and transformers' versions. Ops:
  export {"folder", "head": "classifier"|"encoder", "pooling": "mean"|"cls"|"max"|null, "normalize",
          "inputs": [names], "output", "seq_len", "weights": "safetensors"|"pickle", "out"}
      -> {"inputs", "output", "opset", "parameters", "architecture"}
      loads the folder with transformers' own classes (never with trust_remote_code), wraps it so the
      graph ends in the output the build needs (logits, or pooled + normalised sentence embedding, the
      way sentence-transformers computes them) and writes it with torch.onnx.export (TorchScript
      exporter, opset 17, dynamic batch and sequence axes).
  load {same as export, without "out"} -> {"parameters", "architecture"}: the wrapped module only, for
      `run` when the .onnx came from the cache.
  export and load may carry "adapt": {"arrays", "epochs", "lr", "temperature", "seed", "out"}: before the
      export, a classifier is fine-tuned so that each training query ASCII-lower-cased gets the original
      model's output distribution on the query as it is (KL at the temperature, the query as it is too;
      AdamW, batches of 32, seeded, deterministic; no labels). `arrays` holds the inputs by name under
      `train_cased/`, `train_lower/` and (optional) `eval_cased/`, `eval_lower/`; `out` gets the logits
      before and after on the eval rows. The facts gain {"adapted": {"rows", "seconds"}}.
  run {"arrays": npz in, "out": npz out} -> {"rows"}: the same wrapped module in PyTorch on the given
      inputs (int64, by name), one output array "y".
Any failure is an `ok: false` reply; the parent decides what it means.
"""

from __future__ import annotations

import inspect

import edgecomp_wire as wire

OPSET = 17
_STATE: dict = {}


def _load(req: dict):
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    cls = AutoModelForSequenceClassification if req["head"] == "classifier" else AutoModel
    kwargs = {"trust_remote_code": False, "use_safetensors": req["weights"] == "safetensors"}
    model = cls.from_pretrained(req["folder"], **kwargs).eval()
    params = set(inspect.signature(model.forward).parameters)
    missing = [n for n in req["inputs"] if n not in params]
    if missing:
        raise wire.Failure("inputs", f"{type(model).__name__} takes no {', '.join(missing)}")
    torch.set_num_threads(1)
    return model


def _wrap(model, req: dict):
    import torch
    from torch import nn

    names, head, pooling, normalize = req["inputs"], req["head"], req["pooling"], req["normalize"]

    class Wrapped(nn.Module):
        """The folder's model with the build's output: logits, or the sentence embedding."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args):
            feeds = dict(zip(names, args, strict=True))
            out = self.model(**feeds)
            if head == "classifier":
                return out.logits
            hidden = out[0]  # last_hidden_state, as sentence-transformers' Transformer module takes it
            mask = feeds["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            if pooling == "cls":
                pooled = hidden[:, 0]
            elif pooling == "max":
                pooled = torch.where(mask > 0, hidden, torch.full_like(hidden, -1e9)).max(dim=1).values
            else:
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return nn.functional.normalize(pooled, p=2.0, dim=1) if normalize else pooled

    return Wrapped().eval()


def _prepare(req: dict) -> dict:
    model = _load(req)
    _STATE["module"], _STATE["inputs"] = _wrap(model, req), req["inputs"]
    facts = {
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "architecture": type(model).__name__,
    }
    if req.get("adapt"):
        facts["adapted"] = _adapt(req["adapt"])
    return facts


def _adapt(req: dict) -> dict:
    """The lower-case fine-tune of the module docstring; replaces the module in _STATE."""
    import copy
    import time

    import numpy as np
    import torch

    started = time.perf_counter()
    arrays = wire.load_arrays(req["arrays"])

    def feeds(prefix: str) -> list | None:
        if f"{prefix}/{_STATE['inputs'][0]}" not in arrays:
            return None
        return [
            torch.from_numpy(np.asarray(arrays[f"{prefix}/{n}"], dtype=np.int64)) for n in _STATE["inputs"]
        ]

    def logits(module, rows: list) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([module(*(r[i : i + 256] for r in rows)) for i in range(0, len(rows[0]), 256)])

    teacher, temp = _STATE["module"], float(req["temperature"])
    cased, lower = feeds("train_cased"), feeds("train_lower")
    evals = {k: feeds(f"eval_{k}") for k in ("cased", "lower")}
    torch.manual_seed(int(req["seed"]))
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        target = torch.softmax(logits(teacher, cased) / temp, -1)
        saved = {f"before_{k}": logits(teacher, v).numpy() for k, v in evals.items() if v is not None}
        student = copy.deepcopy(teacher).train()
        opt = torch.optim.AdamW(student.parameters(), lr=float(req["lr"]))
        gen = torch.Generator().manual_seed(int(req["seed"]))
        for _ in range(int(req["epochs"])):
            for idx in torch.randperm(len(target), generator=gen).split(32):
                opt.zero_grad()
                loss = sum(
                    torch.nn.functional.kl_div(
                        torch.log_softmax(student(*(r[idx] for r in rows)) / temp, -1),
                        target[idx],
                        reduction="batchmean",
                    )
                    for rows in (cased, lower)
                )
                (loss * temp * temp).backward()
                opt.step()
        student.eval()
    finally:
        torch.use_deterministic_algorithms(deterministic)
    _STATE["module"] = student
    saved.update({f"after_{k}": logits(student, v).numpy() for k, v in evals.items() if v is not None})
    wire.save_arrays(req["out"], saved)
    return {"rows": len(target), "seconds": round(time.perf_counter() - started, 2)}


def _example(name: str, seq_len: int):
    """A traced example like real queries: one full row and one padded to half (an all-ones mask lets
    transformers drop the mask in the trace, a graph that onnx2tf then converts wrongly)."""
    import torch

    mask = torch.ones((2, seq_len), dtype=torch.int64)
    mask[1, seq_len // 2 :] = 0
    if name == "attention_mask":
        return mask
    if name == "token_type_ids":
        return torch.zeros((2, seq_len), dtype=torch.int64)
    return (torch.arange(2 * seq_len, dtype=torch.int64).reshape(2, seq_len) % 100 + 5) * mask


def _export(req: dict) -> dict:
    import torch

    facts = _prepare(req)
    wrapped = _STATE["module"]
    example = tuple(_example(name, int(req["seq_len"])) for name in req["inputs"])
    axes = {name: {0: "batch", 1: "sequence"} for name in req["inputs"]}
    axes[req["output"]] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            example,
            req["out"],
            input_names=list(req["inputs"]),
            output_names=[req["output"]],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return {
        "inputs": req["inputs"],
        "output": req["output"],
        "opset": OPSET,
        **facts,
    }


def _run(req: dict) -> dict:
    import numpy as np
    import torch

    if "module" not in _STATE:
        raise wire.Failure("state", "run before export")
    arrays = wire.load_arrays(req["arrays"])
    feeds = [torch.from_numpy(np.asarray(arrays[n], dtype=np.int64)) for n in _STATE["inputs"]]
    outs = []
    with torch.no_grad():
        for start in range(0, len(feeds[0]), 256):
            outs.append(_STATE["module"](*(f[start : start + 256] for f in feeds)).numpy())
    y = np.concatenate(outs).astype(np.float32)
    wire.save_arrays(req["out"], {"y": y})
    return {"rows": int(y.shape[0])}


HANDLERS = {"load": _prepare, "export": _export, "run": _run}


def main() -> None:
    wire.open_channel()
    import torch
    import transformers

    info = {"runtime": "torch", "torch": torch.__version__, "transformers": transformers.__version__}
    wire.serve(HANDLERS, info)


if __name__ == "__main__":
    main()
