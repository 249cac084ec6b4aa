"""Builds made once per session and shared across test files (conftest.py): kept read-only, and handed to a
test under its own name exactly as convert would have written them.

Read-only: each shared build's files are hashed when it is made; conftest.py fails a test that used one
and left it changed (validate, profile and package write into a build: such a test takes a copy,
tests/support/builds.py `copy_build`).

Under a test's own name: the recipe fields convert does not read (name, output dir, package, search) only
change recipe.yaml, report.json's `name`, report.md's title and report.html's; the model, the float model,
vocab, labels and every other report value are the same bytes (measured on the tiny project: tests/e2e/
test_shared_builds.py checks it on every run). So `shared_as` copies the shared build to where the test's
recipe would build and rewrites those four files the way convert writes them, after checking that the
recipe differs from the shared build's in nothing else.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from toolchain.build import Build
    from toolchain.recipe.schema import Recipe

CONVERT_IGNORES = (
    "name",
    "output",
    "package",
    "search",
)  # recipe fields that do not change what convert makes
FROZEN: dict[str, dict[Path, dict[str, str]]] = {}  # fixture name -> {shared dir: {file: sha256}}
MADE_BY: dict[
    Path, Recipe
] = {}  # shared build dir -> the recipe its fixture gave convert (before resolution)


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, by path relative to it."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def freeze(fixture: str, *dirs: Path) -> None:
    """Record the files of the shared `dirs` made by session fixture `fixture`."""
    FROZEN[fixture] = {d: tree_digest(d) for d in dirs}


def changes(fixture: str) -> list[str]:
    """Files of `fixture`'s shared dirs added, removed or changed since they were made."""
    found = []
    for root, before in FROZEN.get(fixture, {}).items():
        now = tree_digest(root)
        found += [str(root / f) for f in sorted(set(before) | set(now)) if before.get(f) != now.get(f)]
    return found


def _convert_relevant(recipe: Recipe) -> dict:
    return recipe.model_dump(mode="json", exclude=set(CONVERT_IGNORES))


def shared_as(shared: Build, recipe: Recipe) -> Path:
    """The shared build as convert writes it for `recipe` (at recipe.build_dir); `recipe` must differ from
    the recipe that made the shared build only in CONVERT_IGNORES."""
    from toolchain.recipe.compose import recipe_from_dict

    made_by = MADE_BY[shared.dir]
    if _convert_relevant(made_by) != _convert_relevant(recipe):
        raise AssertionError(
            f"the shared build {shared.dir} was made by another recipe: build this one itself\n"
            f"shared: {_convert_relevant(made_by)}\nwanted: {_convert_relevant(recipe)}"
        )
    dst = recipe.build_dir
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(shared.dir, dst)
    saved = yaml.safe_load((dst / "recipe.yaml").read_text(encoding="utf-8"))  # as resolved by convert
    saved.update({k: v for k, v in recipe.model_dump(mode="json").items() if k in CONVERT_IGNORES})
    (dst / "recipe.yaml").write_text(recipe_from_dict(saved).to_yaml(), encoding="utf-8")
    report = json.loads((dst / "report.json").read_text(encoding="utf-8"))
    old, report["name"] = report["name"], recipe.name
    (dst / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    md = (dst / "report.md").read_text(encoding="utf-8").split("\n", 1)
    if md[0] != f"# {old}":
        raise AssertionError(f"report.md of {shared.dir} does not start with the title '# {old}'")
    (dst / "report.md").write_text(f"# {recipe.name}\n{md[1]}", encoding="utf-8")
    from toolchain.build import read_report  # as the other toolchain imports here: when a test runs
    from toolchain.report.html import html

    model = (dst / "model.tflite").read_bytes()
    (dst / "report.html").write_text(html(read_report(dst), model), encoding="utf-8")
    return dst
