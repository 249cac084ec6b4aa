"""Build directories for the stage tests: make one, copy it, and edit it as if convert had written it.

A stage refuses a build whose files no longer match the hashes in report.json, so a test that changes a
recorded file on purpose (to reach the check behind the hash check) records the new hash with `rehash`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from toolchain.build import Build
    from toolchain.recipe.schema import Recipe

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent"


def example_splits(out: Path, sizes: dict[str, int]) -> dict[str, Path]:
    """The example's splits cut to their first `sizes[name]` lines, written under out/data/."""
    splits = {}
    for name, n in sizes.items():
        splits[name] = out / "data" / f"{name}.jsonl"
        splits[name].parent.mkdir(parents=True, exist_ok=True)
        lines = (EXAMPLE / "data" / f"{name}.jsonl").read_text("utf-8").splitlines()[:n]
        splits[name].write_text("\n".join(lines) + "\n", "utf-8")
    return splits


def tiny_build(tiny_project: Any, out: Path, name: str, **recipe: Any) -> Build:
    """Convert the `tiny_project` fixture into `out`/`name` (its int8 recipe, with `recipe` on top)."""
    from toolchain.pipeline import build
    from toolchain.recipe.compose import recipe_from_dict

    return build(recipe_from_dict(tiny_project.recipe_dict(name=name, output={"dir": str(out)}, **recipe)))


def example_recipe(out: Path) -> Recipe:
    """The shipped example's recipe writing into `out` (its teacher trained first when it is missing)."""
    from toolchain.recipe.compose import apply_overrides, load_recipe

    if not (EXAMPLE / "model.keras").is_file():
        subprocess.run([sys.executable, str(EXAMPLE / "train_teacher.py")], check=True, capture_output=True)
    return apply_overrides(load_recipe(EXAMPLE / "recipe.yaml"), {"output.dir": str(out)})


def copy_build(build_dir: Path, into: Path, skip: tuple[str, ...] = ()) -> Path:
    """A copy of `build_dir` as `into`/<its name> (without the files named in `skip`) to change freely."""
    dst = into / build_dir.name
    shutil.copytree(build_dir, dst, ignore=shutil.ignore_patterns(*skip) if skip else None)
    return dst


def edit_report(build_dir: Path, edit: Callable[[dict], None]) -> None:
    """Change report.json in place by `edit(report)`."""
    path = build_dir / "report.json"
    report = json.loads(path.read_text())
    edit(report)
    path.write_text(json.dumps(report))


def edit_recipe(build_dir: Path, edit: Callable[[dict], None]) -> None:
    """Change recipe.yaml in place by `edit(recipe)` (e.g. point a split at another file)."""
    path = build_dir / "recipe.yaml"
    recipe = yaml.safe_load(path.read_text())
    edit(recipe)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))


def rehash(build_dir: Path, name: str) -> None:
    """Record the current sha256 of `name` in report.json, as if convert had written this file."""
    digest = hashlib.sha256((build_dir / name).read_bytes()).hexdigest()

    def record(report: dict) -> None:
        if name == "model.tflite":
            report["model_sha256"] = digest
        else:
            report["files"][name] = digest

    edit_report(build_dir, record)


def with_custom_op(src: Path, dst: Path, name: str) -> Path:
    """Copy a .tflite with its first op's kernel replaced by custom op `name` (a Flex op is `Flex<Op>`:
    how a Select-TF conversion encodes one)."""
    from devices.profiling.slicer import with_custom_op as replace_op

    dst.write_bytes(replace_op(src.read_bytes(), 0, name))
    return dst
