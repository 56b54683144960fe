"""The layering rules, checked on the source: every import of every module in src/steelyard (top-level,
inside functions, under TYPE_CHECKING, and ``importlib.import_module("...")`` with a literal name).

A rule is one row of :data:`RULES`: which modules it applies to and which imports they may not make.
Add a row for a new layer rule; add to :data:`ALLOWED` only with the reason the exception is right.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "steelyard"


@dataclass(frozen=True)
class Rule:
    name: str
    #: module name ("steelyard.search.pareto") → whether the rule applies to it.
    applies: Callable[[str], bool]
    #: imported module prefixes it may not use ("rich" forbids "rich" and "rich.table", not "richer").
    forbidden: tuple[str, ...]


def inside(*packages: str) -> Callable[[str], bool]:
    names = tuple(f"steelyard.{p}" for p in packages)
    return lambda module: any(module == n or module.startswith(n + ".") for n in names)


def outside(*packages: str) -> Callable[[str], bool]:
    within = inside(*packages)
    return lambda module: not within(module)


RULES: tuple[Rule, ...] = (
    Rule("nothing outside cli/ imports steelyard.cli", outside("cli"), ("steelyard.cli",)),
    Rule("only reporting/ and cli/ import rich", outside("reporting", "cli"), ("rich",)),
    Rule("only reporting/ and cli/ import steelyard.reporting", outside("reporting", "cli"), ("steelyard.reporting",)),
)

#: (importing module, imported module or a prefix of it) → why it is allowed.
ALLOWED: dict[tuple[str, str], str] = {
    ("steelyard.__main__", "steelyard.cli.main"): "`python -m steelyard` is the CLI's second entry point",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``source`` (relative ones resolved against ``module``)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from steelyard import cli` imports steelyard.cli
                yield node.lineno, f"{target}.{alias.name}"
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) ==
              "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value


def _matches(imported: str, prefix: str) -> bool:
    return imported == prefix or imported.startswith(prefix + ".")


def _allowed(module: str, imported: str) -> bool:
    return any(module == importer and _matches(imported, prefix) for importer, prefix in ALLOWED)


def violations(rule: Rule, modules: dict[str, tuple[Path, str]]) -> list[str]:
    """``path:line imports name``, one per offending import statement."""
    out: dict[tuple[str, int], str] = {}
    for module, (path, source) in sorted(modules.items()):
        if not rule.applies(module):
            continue
        where = str(path.relative_to(PACKAGE.parent))
        for line, imported in imports(source, module, path.name == "__init__.py"):
            if any(_matches(imported, p) for p in rule.forbidden) and not _allowed(module, imported):
                out.setdefault((where, line), f"{where}:{line} imports {imported}")
    return [out[k] for k in sorted(out)]


def all_modules() -> dict[str, tuple[Path, str]]:
    return {module_name(p): (p, p.read_text(encoding="utf-8")) for p in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_layer_rule(rule: Rule):
    modules = all_modules()
    assert len(modules) > 50  # the walk found the package
    found = violations(rule, modules)
    assert not found, f"{rule.name}:\n  " + "\n  ".join(found)


def test_every_allowed_exception_is_still_needed():
    modules = all_modules()
    for importer, imported in ALLOWED:
        path, source = modules[importer]
        names = {i for _, i in imports(source, importer, path.name == "__init__.py")}
        assert any(_matches(name, imported) for name in names), (
            f"{importer} no longer imports {imported}: drop it from ALLOWED")


def test_the_checker_sees_every_form_of_import():
    source = (
        "import rich\n"
        "from rich.table import Table\n"
        "def f():\n"
        "    from ..reporting import formatting\n"
        "    from . import cli\n"
        "    importlib.import_module('steelyard.cli.main')\n"
    )
    found = {i for _, i in imports(source, "steelyard.search.pareto")}
    assert {"rich", "rich.table", "steelyard.reporting", "steelyard.reporting.formatting", "steelyard.search.cli",
            "steelyard.cli.main"} <= found
    fake = {"steelyard.search.pareto": (PACKAGE / "search" / "pareto.py", source)}
    assert len(violations(RULES[1], fake)) == 2  # rich and rich.table
    assert violations(RULES[0], fake) == ["steelyard/search/pareto.py:6 imports steelyard.cli.main"]
    assert violations(RULES[2], fake) == ["steelyard/search/pareto.py:4 imports steelyard.reporting"]
    assert not violations(RULES[1], {"steelyard.reporting.x": (PACKAGE / "reporting" / "x.py", source)})
