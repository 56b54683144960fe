"""Import rules for the bottom layer: models/, families/, hardware/ and units import nothing above them.

Every ``import`` and ``from ... import`` in the listed packages counts, at module level, inside
functions (lazy imports) and under ``TYPE_CHECKING`` alike: a lazy import upwards is still a
dependency upwards. Lazy registry entries (``"module:attr"`` strings, as the model loader registry
uses for compressed folders) are data, not imports, and are allowed. ARCHITECTURE.md explains the
layers; this file is the part of those rules that concerns the bottom layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "steelyard"

#: Everything above the bottom layer, as ``steelyard.<name>``.
ABOVE_BOTTOM = ("profiling", "data", "metrics", "significance", "evaluation", "training", "compression", "distill",
                "search", "comparison", "store", "reporting", "cli", "backends")

#: (subject, forbidden targets, why). A subject is a package folder or a module under ``steelyard``.
RULES: list[tuple[str, tuple[str, ...], str]] = [
    ("models", ABOVE_BOTTOM, "models/ is the bottom layer: formats above it plug in through the loader registry"),
    ("hardware", ABOVE_BOTTOM, "hardware/ is the bottom layer"),
    ("units", ABOVE_BOTTOM, "units.py is the bottom layer"),
    ("outputs", (*ABOVE_BOTTOM, "models"), "outputs.py (where commands may write) is below every writer"),
    ("families", (*ABOVE_BOTTOM, "models"),
     "families/ sits beside models/ and models/ may use it, so it imports nothing from models/ (no cycle)"),
]


def module_name(path: Path) -> str:
    """``steelyard.x.y`` for ``src/steelyard/x/y.py`` (a package's ``__init__`` is the package)."""
    parts = ("steelyard", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of every module ``source`` imports, wherever the statement sits."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # ``from steelyard import cli``
    return found


def files_of(subject: str) -> list[Path]:
    folder = PACKAGE / subject
    if folder.is_dir():
        return sorted(folder.rglob("*.py"))
    return [PACKAGE / f"{subject}.py"]


def violates(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f"steelyard.{f}" or name.startswith(f"steelyard.{f}.") for f in forbidden)


def test_the_walker_sees_every_kind_of_import():
    source = (
        "import steelyard.cli.app\n"
        "from steelyard.store import runs\n"
        "from steelyard import reporting\n"
        "from ..compression import api\n"
        "from . import tasks\n"
        "def lazy():\n    from steelyard.profiling.profile import count\n"
        "if TYPE_CHECKING:\n    from steelyard.training.config import FinetuneConfig\n"
        "LOADER = 'steelyard.compression.serialization.sources:LOADER'\n"
    )
    names = imported_modules(source, "steelyard.models.loading")
    for expected in ("steelyard.cli.app", "steelyard.store", "steelyard.reporting", "steelyard.compression",
                     "steelyard.models.tasks", "steelyard.profiling.profile", "steelyard.training.config"):
        assert expected in names
    assert not any("serialization" in n for n in names)  # a lazy registry string is not an import
    assert imported_modules("from .units import BlockUnits\n", "steelyard.families", is_package=True) == {
        "steelyard.families.units", "steelyard.families.units.BlockUnits"}


@pytest.mark.parametrize(("subject", "forbidden", "why"), RULES, ids=[r[0] for r in RULES])
def test_bottom_layer_imports_nothing_above_it(subject, forbidden, why):
    files = files_of(subject)
    assert files and all(f.is_file() for f in files), f"no source files for {subject}"
    offences = []
    for path in files:
        name = module_name(path)
        for target in sorted(imported_modules(path.read_text(), name, path.name == "__init__.py")):
            if violates(target, forbidden):
                offences.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert not offences, f"{why}:\n" + "\n".join(offences)
