"""Import layers, import circles and private names, read from the source with `ast` (nothing is imported).

Layers, low to high: base (toolchain/base/) < converters (converters/) < devices (devices/) < pipeline (the
rest of toolchain/) < cli (toolchain/cli/). A module imports its own layer or lower ones only; top-level
and function-level imports count alike, since a function-level import is still a dependency. Child scripts
(`*_child.py`) run in other environments: of ours they may import only a stdlib-only module of the base.

There is no allow-list: every violation fails.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: tests/unit/ is two levels down
PACKAGES = ("toolchain", "converters", "devices")
LAYERS = ("base", "converters", "devices", "pipeline", "cli")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # our module that is imported
    names: tuple[str, ...]  # names taken from it (`from target import a, b`), empty for `import target`
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    found = {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}
    assert "toolchain.base.errors" in found and "devices.runner_child" in found, sorted(found)
    return found


def layer(module: str) -> str:
    if module == "toolchain.base" or module.startswith("toolchain.base."):
        return "base"
    if module == "toolchain.cli" or module.startswith("toolchain.cli."):
        return "cli"
    top = module.split(".")[0]
    return {"converters": "converters", "devices": "devices", "toolchain": "pipeline"}[top]


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if modules()[module].name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def all_imports(module: str) -> tuple[tuple[str, tuple[str, ...], int], ...]:
    """Every import statement of `module`, anywhere in it: (imported module, names taken, line)."""
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, (), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((_absolute(module, node), tuple(a.name for a in node.names), node.lineno))
    return tuple(found)


@cache
def our_imports(module: str) -> tuple[Import, ...]:
    """Imports of our modules; `from pkg import sub` is an import of the submodule pkg.sub."""
    ours = modules()
    result = []
    for target, names, line in all_imports(module):
        if target.split(".")[0] not in PACKAGES:
            continue
        submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in ours]
        plain = tuple(n for n in names if f"{target}.{n}" not in ours)
        for sub in submodules:
            result.append(Import(module, sub, (), line))
        if plain or not names:
            assert target in ours, f"{module}:{line} imports {target}, which is not a module here"
            result.append(Import(module, target, plain, line))
    return tuple(result)


def upward_imports() -> set[tuple[str, str]]:
    return {
        (imp.module, imp.target)
        for module in modules()
        for imp in our_imports(module)
        if LAYERS.index(layer(imp.target)) > LAYERS.index(layer(module))
    }


def circles() -> set[frozenset[str]]:
    """Strongly connected components of the import graph with more than one module (Tarjan)."""
    graph = {m: sorted({imp.target for imp in our_imports(m)} - {m}) for m in modules()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def private_imports() -> set[tuple[str, str, str]]:
    """`from a import _b` of our module a, from another module; dunders (__version__) are public."""
    return {
        (imp.module, imp.target, name)
        for module in modules()
        for imp in our_imports(module)
        for name in imp.names
        if imp.target != module and name.startswith("_") and not name.startswith("__")
    }


def _describe(pairs: set[tuple[str, str]]) -> str:
    return "\n".join(f"  {m} -> {t} ({layer(m)} -> {layer(t)})" for m, t in sorted(pairs))


def test_the_scanner_sees_function_level_and_from_imports() -> None:
    # recipe.compose_recipe imports the presets inside the function; steps/ modules use `from x import y`
    targets = {imp.target for imp in our_imports("toolchain.recipe.compose")}
    assert "toolchain.recipe.presets" in targets
    assert {imp.target for imp in our_imports("toolchain.steps.prune")} >= {
        "toolchain.base.errors",
        "toolchain.steps.base",
    }
    assert layer("toolchain.base.errors") == "base" and layer("toolchain.cli.main") == "cli"
    assert layer("toolchain.steps.prune") == "pipeline" and layer("devices.profiling.slicer") == "devices"
    assert layer("toolchain.base") == "base" and layer("toolchain") == "pipeline"


def test_imports_point_down_only() -> None:
    upward = upward_imports()
    assert not upward, "upward imports (a module imports a higher layer):\n" + _describe(upward)


def test_base_imports_nothing_of_ours_outside_base() -> None:
    outside = {
        (imp.module, imp.target)
        for module in modules()
        if layer(module) == "base"
        for imp in our_imports(module)
        if layer(imp.target) != "base"
    }
    assert not outside, "the base imports:\n" + _describe(outside)


def _stdlib_only(module: str) -> list[str]:
    """Imports of `module` that are neither the standard library nor __future__."""
    return [
        target
        for target, _, _ in all_imports(module)
        if target.split(".")[0] not in sys.stdlib_module_names and target != "__future__"
    ]


def test_child_scripts_import_only_a_stdlib_wire_module_of_ours() -> None:
    children = [m for m in modules() if m.endswith("_child")]
    assert len(children) >= 4, children
    problems = []
    for child in children:
        for imp in our_imports(child):
            if layer(imp.target) != "base":
                problems.append(f"  {child} -> {imp.target} (only a base module may be imported)")
                continue
            parts = imp.target.split(".")
            for n in range(1, len(parts) + 1):  # the parent packages' __init__ run too
                loaded = ".".join(parts[:n])
                if non_stdlib := _stdlib_only(loaded):
                    problems.append(f"  {child} -> {imp.target}: {loaded} is not stdlib-only ({non_stdlib})")
    assert not problems, "child scripts run in other environments:\n" + "\n".join(problems)


def test_no_import_circles() -> None:
    found = circles()
    describe = lambda cs: "\n".join("  " + " <-> ".join(sorted(c)) for c in sorted(cs, key=sorted))  # noqa: E731
    assert not found, "import circles:\n" + describe(found)


def test_no_private_names_imported_across_modules() -> None:
    found = private_imports()
    describe = lambda s: "\n".join(f"  {m} imports {t}.{n}" for m, t, n in sorted(s))  # noqa: E731
    assert not found, "private names imported from another module:\n" + describe(found)


# --------------------------------------------------------------------------- the tree shows the architecture
MAX_LINES = 400
MAX_LOCAL_IMPORT_SHARE = 0.10


def _has_reason(lines: list[str], at: int) -> bool:
    """A comment on the import line, or on the line above the block of imports it belongs to."""
    if "#" in lines[at]:
        return True
    above = at - 1
    while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
        above -= 1
    return above >= 0 and lines[above].strip().startswith("#")


def _imports_of(module: str, path: Path) -> tuple[int, list[tuple[str, int, bool]]]:
    """(module-level imports of our packages, [(module, line, has a reason)] of the function-level ones)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    top, local = 0, []

    def visit(node: ast.AST, in_function: bool) -> None:
        nonlocal top
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import | ast.ImportFrom):
                names = [a.name for a in child.names] if isinstance(child, ast.Import) else [child.module]
                if any((n or "").split(".")[0] in PACKAGES for n in names):
                    if in_function:
                        local.append((module, child.lineno, _has_reason(lines, child.lineno - 1)))
                    else:
                        top += 1
            visit(child, inside)

    visit(ast.parse("\n".join(lines)), False)
    return top, local


def function_level_imports() -> tuple[int, list[tuple[str, int, bool]]]:
    """(imports of our modules at module level, [(module, line, has a reason comment)] inside functions).

    Child scripts run in other environments and are left out; `if TYPE_CHECKING:` imports count as module
    level (they cost nothing at run time). A reason is a comment on the import line or above its block."""
    top, local = 0, []
    for module, path in modules().items():
        if not module.endswith("_child"):
            t, loc = _imports_of(module, path)
            top, local = top + t, local + loc
    return top, local


def test_no_toolchain_module_belongs_to_a_name_prefix_family() -> None:
    """package_*, backend_*, mixed*, report*: a family of flat modules is a subpackage that was not made."""
    names = sorted(p.stem for p in (ROOT / "toolchain").glob("*.py") if p.stem != "__init__")
    prefixes: dict[str, list[str]] = {}
    for name in names:
        prefixes.setdefault(name.split("_")[0], []).append(name)
    families = {k: v for k, v in prefixes.items() if len(v) > 1}
    assert not families, f"toolchain/ top-level modules sharing a prefix: {families}"


def test_no_file_over_400_lines() -> None:
    long = {
        m: n
        for m, p in modules().items()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by what they do): {long}"


def test_imports_sit_at_the_top_and_the_few_in_functions_say_why() -> None:
    top, local = function_level_imports()
    share = len(local) / max(1, top + len(local))
    unexplained = [f"{m}:{line}" for m, line, reason in local if not reason]
    assert share <= MAX_LOCAL_IMPORT_SHARE, f"{len(local)} of {top + len(local)} imports of ours in functions"
    assert not unexplained, "function-level imports without a reason comment:\n  " + "\n  ".join(unexplained)
