"""The build directory: model.tflite, recipe.yaml, report.json (+ report.md), tokenizer and labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolchain.base.atomic import staged_dir, write_text
from toolchain.base.errors import InputFileError
from toolchain.recipe import Recipe

MODEL_FILE, RECIPE_FILE, REPORT_FILE = "model.tflite", "recipe.yaml", "report.json"


def _dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"


def write_build(recipe: Recipe, tflite: bytes, report: dict[str, Any], inputs: Any) -> tuple[Path, Path]:
    """Write every artifact of a build into build/<name>/ at once (staged, then renamed)."""
    final = recipe.build_dir
    with staged_dir(final) as stage:
        (stage / MODEL_FILE).write_bytes(tflite)
        (stage / RECIPE_FILE).write_text(recipe.to_yaml(), encoding="utf-8")
        (stage / REPORT_FILE).write_text(_dumps(report), encoding="utf-8")
        (stage / "report.md").write_text(markdown(report), encoding="utf-8")
        if inputs.labels:  # embedding models have none
            (stage / "labels.txt").write_text("\n".join(inputs.labels) + "\n", encoding="utf-8")
        inputs.tokenizer.save_vocab(stage / "vocab.txt")
    return final.resolve(), final.resolve() / MODEL_FILE


def load_report(build_dir: Path) -> dict[str, Any]:
    path = Path(build_dir) / REPORT_FILE
    if not path.is_file():
        raise InputFileError(
            f"no {REPORT_FILE} in {build_dir}", hint="run `edgecomp convert` to make a build"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def update_report(build_dir: Path, section: str, data: Any) -> None:
    """Add or replace one top-level section (validation, profile, package) atomically."""
    report = load_report(build_dir)
    report[section] = data
    write_text(Path(build_dir) / REPORT_FILE, _dumps(report))
    write_text(Path(build_dir) / "report.md", markdown(report))


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def markdown(report: dict[str, Any]) -> str:
    """A short human-readable summary of report.json."""
    m, src = report["model"], report["source"]
    lines = [
        f"# {report['name']}",
        "",
        f"- source: `{src['path']}` ({src['format']}, {src['parameters']:,} params)",
        f"- quantization: {report['quantization']['mode']}",
        f"- size: {_kb(m['size_bytes'])} (gzip {_kb(m['gzip_bytes'])}); fp32 {_kb(src['fp32_tflite_bytes'])}"
        f" -> {report['ratios_vs_fp32']['size']}x smaller, gzip {report['ratios_vs_fp32']['gzip']}x",
        f"- ops: {', '.join(f'{k} x{v}' for k, v in m['ops'].items())}",
    ]
    for step in report.get("steps", []):
        extra = f", sparsity {step['achieved_sparsity']:.1%}" if "achieved_sparsity" in step else ""
        lines.append(
            f"- step {step['index']} {step['kind']}: float test accuracy {step['float_test_accuracy']}{extra}"
        )
    ev = report.get("evaluation", {})
    if "vs_source_float" in ev:
        c = ev["vs_source_float"]
        lines += [
            "",
            "| | accuracy | macro-F1 |",
            "|---|---|---|",
            f"| float source | {c['reference']['accuracy']:.4f} | {c['reference']['macro_f1']:.4f} |",
            f"| .tflite | {c['converted']['accuracy']:.4f} | {c['converted']['macro_f1']:.4f} |",
            "",
            f"top-1 agreement with float: {ev['vs_final_float']['top1_agreement']:.2%}",
        ]
    for w in report.get("warnings", []):
        lines.append(f"- warning: {w}")
    return "\n".join(lines) + "\n"
