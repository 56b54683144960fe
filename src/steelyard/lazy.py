"""Lazy package exports: a package names what it offers, and a name's module is imported on first use.

``import steelyard.training.config`` (a frozen dataclass the CLI builds its options from) must not
import torch through the package's ``__init__``; with :func:`lazy_package` the package lists its
public names by module and imports a module only when one of its names is asked for (PEP 562).

An exported name may also be a submodule's name (``steelyard.training.finetune`` is the module
that defines the function ``finetune``). An eager ``from .finetune import finetune`` leaves the
function on the package; here importing the submodule must not replace it either, so the package
ignores the import system binding a submodule over an exported name.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib import import_module
from types import ModuleType
from typing import Any


class _LazyPackage(ModuleType):
    _where: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        where = self.__dict__.get("_where", {})
        if name in where:
            return getattr(import_module(where[name]), name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and name in self.__dict__.get("_where", {}):
            return  # a submodule of the same name as an export: the export wins, as with an eager import
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self.__dict__.get("_where", {})})


def lazy_package(package: str, names_by_module: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Make ``package`` export these names lazily; returns its ``__all__``."""
    module = sys.modules[package]
    module.__class__ = _LazyPackage
    module.__dict__["_where"] = {name: mod for mod, names in names_by_module.items() for name in names}
    return sorted(module.__dict__["_where"])
