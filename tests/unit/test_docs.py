"""The README and the docs site: the README fits a screen and its links resolve, the generated references
(docs/gen_cli.py, docs/gen_schemas.py) list every command and key and are the committed files, one version.

Fast: no mkdocs (tests/e2e/test_docs_build.py runs `mkdocs build --strict`), no conversion.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import tomllib
import typer.main

from toolchain import __version__
from toolchain.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _generator(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_{name}", ROOT / "docs" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands(group, prefix: str = "edgecomp") -> list[str]:
    """Every command path, read from the Typer app itself (not through the generator's walk)."""
    names = []
    for name, sub in group.commands.items():
        names.append(f"{prefix} {name}")
        if hasattr(sub, "commands"):
            names += _commands(sub, f"{prefix} {name}")
    return names


def test_readme_fits_a_screen_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert readme.splitlines()[3].startswith("make demo") and readme.splitlines()[5].startswith("make test")
    targets = [t for t in LINK.findall(readme) if not t.startswith(("http://", "https://", "#"))]
    assert len(targets) >= 20
    missing = [t for t in targets if not (ROOT / t.split("#")[0]).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_the_cli_reference_lists_every_command_and_option():
    gen = _generator("gen_cli")
    page = gen.markdown()
    root = typer.main.get_command(app)
    commands = _commands(root)
    assert {"edgecomp convert", "edgecomp devices list", "edgecomp cache clean", "edgecomp doctor"} <= set(
        commands
    )
    for command in commands:
        assert re.search(rf"^#+ `{command}`$", page, re.M), f"{command} is missing from the CLI reference"
    assert gen.command_names() == ["edgecomp", *commands]
    convert = root.commands["convert"]
    for param in convert.params:  # every option of convert, by its flag, with its help
        for flag in param.opts:
            assert flag in page, flag
        if getattr(param, "help", None):
            assert " ".join(param.help.split())[:40] in page
    assert "| `-Q, --quantize <float32|float16|dynamic|weight_only|int8|int16x8|mixed|int4>` |" in page


def test_the_recipe_reference_covers_every_key_and_the_schema_validates_the_example():
    from toolchain.recipe.schema import Recipe

    gen = _generator("gen_schemas")
    schema = gen.recipe_schema()
    page = gen.recipe_markdown(schema)
    for key in Recipe.model_fields:
        assert f"| `{key}` |" in page, key
    for section in ("SourceSpec", "DataSpec", "QuantizationSpec", "EvaluationSpec", "PackageSpec"):
        assert f"## {section}" in page
    for step in ("PruneStep", "DistillStep", "LowRankStep", "QATStep", "VocabPruneStep", "ItemPruneStep"):
        assert f"## {step}" in page
    assert "`target_sparsity`" in page and "`float_fallback_ops`" in page
    assert schema["additionalProperties"] is False  # unknown keys are errors, in editors too


def test_the_report_reference_covers_every_section():
    from toolchain.report.model import Report

    gen = _generator("gen_schemas")
    page = gen.report_markdown(gen.report_schema())
    for key in Report.model_fields:
        assert f"| `{key}` |" in page, key
    for section in ("EvaluationSection", "QuantizationSection", "ValidationReport", "PackageSection"):
        assert f"## {section}" in page
    manifest = gen.manifest_markdown(gen.manifest_schema())  # the app team's file
    assert "| `app_must_lowercase` | boolean | required | True: the app must lower-case" in manifest
    for text in (page, manifest):  # every key explained: no row with an empty description
        assert not [ln for ln in text.splitlines() if ln.startswith("| `") and ln.endswith("|  |")]


def test_the_generated_references_are_the_committed_ones():
    """A changed option or key without `make docs` fails here, naming the file to regenerate."""
    written = {
        _generator("gen_cli").OUT: _generator("gen_cli").markdown(),
        **_generator("gen_schemas").outputs(),
    }
    stale = [str(p.relative_to(ROOT)) for p, text in written.items() if p.read_text(encoding="utf-8") != text]
    assert not stale, (
        f"stale generated docs {stale}: run `make docs` (or docs/gen_cli.py, docs/gen_schemas.py)"
    )


def test_one_version_in_pyproject_the_package_and_the_changelog():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == __version__ == "0.9.0"
    assert project["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]
    assert f"## {__version__} " in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_every_docs_page_is_in_the_nav():
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]

    def pages(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in pages(item)]
        return [p for value in node.values() for p in pages(value)]

    listed = set(pages(nav))
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk == listed
