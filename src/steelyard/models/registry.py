"""The loader registry: each kind of model source is one :class:`Loader`, tried in order.

``load_model(source)`` asks every loader, in registry order, whether it recognises ``source``
(:meth:`Loader.detect`, cheap: a regex, a file name, a suffix) and hands it to the first that does
(:meth:`Loader.load`). A new format is one module with a loader plus one :func:`register_loader` call
or one line in :data:`BUILTIN`.

Entries are lazy ``"package.module:attr"`` strings (lm-evaluation-harness's registry does the same):
nothing is imported until a source is resolved, and ``models/`` never imports the packages above it.
The compressed-folder and ONNX loaders live in ``steelyard.compression.serialization.sources``; this
module names them as strings only, so the layering holds (``tests/test_import_rules_layers.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from steelyard.errors import ConfigError

if TYPE_CHECKING:
    from steelyard.models.handle import ModelHandle
    from steelyard.models.loading import LoadConfig


@runtime_checkable
class Loader(Protocol):
    """One kind of model source: recognise it, then turn it into a :class:`ModelHandle`."""

    def detect(self, source: str, cfg: LoadConfig) -> bool:
        """Whether ``source`` is this loader's kind; must not load anything heavy."""
        ...

    def load(self, source: str, cfg: LoadConfig) -> ModelHandle:
        """The handle for ``source`` (called only after :meth:`detect` said yes)."""
        ...


@dataclass(frozen=True)
class LoaderEntry:
    """A registered loader: its name and the loader itself, or where to import it from."""

    name: str
    target: str | Loader

    def resolve(self) -> Loader:
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attr = self.target.partition(":")
        loader = getattr(import_module(module_name), attr)
        if not isinstance(loader, Loader):
            raise TypeError(f"loader entry {self.name!r} ({self.target}) is not a Loader")
        return loader


#: The built-in loaders, in the order ``load_model`` tries them. A factory string wins over a
#: catalog or hub name; steelyard's own artifacts (compressed folders, ONNX files) come before the
#: plain Hugging Face folder, whose ``config.json`` they also carry; the hub is the catch-all.
BUILTIN: tuple[LoaderEntry, ...] = (
    LoaderEntry("factory", "steelyard.models.sources.factory:LOADER"),
    LoaderEntry("onnx-file", "steelyard.compression.serialization.sources:ONNX_FILE_LOADER"),
    LoaderEntry("compressed-folder", "steelyard.compression.serialization.sources:COMPRESSED_LOADER"),
    LoaderEntry("config-file", "steelyard.models.sources.config_file:LOADER"),
    LoaderEntry("folder", "steelyard.models.sources.folder:LOADER"),
    LoaderEntry("catalog", "steelyard.models.sources.catalog:LOADER"),
    LoaderEntry("hub", "steelyard.models.sources.hub:LOADER"),
)

_entries: list[LoaderEntry] = list(BUILTIN)


def loader_entries() -> tuple[LoaderEntry, ...]:
    """The registered loaders, in the order they are tried."""
    return tuple(_entries)


def register_loader(name: str, target: str | Loader, *, before: str | None = None) -> None:
    """Add a loader (a :class:`Loader` or a lazy ``"module:attr"`` string), tried before ``before``.

    Without ``before`` it goes just ahead of the hub catch-all. Registering a name twice is an
    error: a plug-in that wants to replace a built-in loader should :func:`unregister_loader` it.
    """
    if any(e.name == name for e in _entries):
        raise ConfigError(f"a model loader named {name!r} is already registered")
    anchor = before or "hub"
    names = [e.name for e in _entries]
    if anchor not in names:
        raise ConfigError(f"no model loader named {anchor!r} to register {name!r} before")
    _entries.insert(names.index(anchor), LoaderEntry(name, target))


def unregister_loader(name: str) -> None:
    """Remove a loader by name (tests and plug-ins that replace a built-in)."""
    for i, entry in enumerate(_entries):
        if entry.name == name:
            del _entries[i]
            return
    raise ConfigError(f"no model loader named {name!r}")


def find_loader(source: str, cfg: LoadConfig) -> tuple[str, Loader] | None:
    """(name, loader) of the first loader that recognises ``source``, or None."""
    for entry in _entries:
        loader = entry.resolve()
        if loader.detect(source, cfg):
            return entry.name, loader
    return None
