"""Resolve a model string to a ModelHandle: hub id, local folder, factory, config or catalog.

``source`` may be a ``package.module:function`` factory, a steelyard artifact (a compressed folder,
an ``.onnx`` file), a Hugging Face config ``.json`` file, a folder with a ``config.json``, a catalog
name (with ``config_only``) or a hub id. Each kind is one loader in :mod:`steelyard.models.registry`,
tried in order; this module holds the load options and the dispatch.

Safety: weights load through transformers (safetensors, or ``torch.load(weights_only=True)``
for legacy ``.bin``), never an unrestricted unpickle; ``trust_remote_code`` is off unless the
user passes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steelyard.errors import (
    ConfigError,
    DtypeUnsupportedError,
    ModelSourceError,
    SteelyardError,
    UnsupportedConfigError,
)
from steelyard.models.handle import ModelHandle
from steelyard.models.quiet import library_bars
from steelyard.models.registry import find_loader
from steelyard.models.tasks import InputSpec, check_task

DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class LoadConfig:
    """How to load a model; the CLI builds one of these from its flags."""

    task: str | None = None
    config_only: bool = False
    #: None: the config's own ``torch_dtype`` for a config-only build (float32 when it names none),
    #: float32 when real weights are loaded.
    dtype: str | None = None
    device: str = "cpu"
    inputs: InputSpec = field(default_factory=InputSpec)
    #: For factories that give no example input: one shape per positional input.
    input_shapes: tuple[tuple[int, ...], ...] = ()
    input_dtype: str = "float32"
    trust_remote_code: bool = False
    num_labels: int | None = None
    #: Load the generating head when no ``task`` is given (``--new-tokens``): an encoder-decoder then gets
    #: its LM head (``seq2seq-lm`` / ``speech-seq2seq``) rather than the bare model it is weighed as.
    generate: bool = False
    #: Show transformers' own tqdm bars ("Loading weights", downloads) while loading; off by default.
    library_progress: bool = False

    def __post_init__(self) -> None:
        if self.dtype is not None:
            object.__setattr__(self, "dtype", float_dtype(self.dtype))
        if self.task is not None:
            check_task(self.task)
        check_device(self.device, self.dtype or "float32")

    def torch_dtype(self, config: Any = None) -> Any:
        """The dtype to build in: ``dtype``, else (config only) the config's own, else float32."""
        if self.dtype is not None:
            return torch_dtype(self.dtype)
        own = config_dtype(config) if self.config_only else None
        return torch_dtype(own or "float32")


def float_dtype(name: object) -> str:
    """``fp16``, ``half``, ``bf16``, ``fp32``, ``float``, ``torch.float16`` ... → a name in :data:`DTYPES`."""
    from steelyard.errors import HardwareError
    from steelyard.hardware.spec import normalize_dtype

    try:
        text = normalize_dtype(name)
    except HardwareError:
        text = ""
    if text not in DTYPES:
        raise ConfigError(f"unknown dtype '{name}'; choose one of: {', '.join(DTYPES)} (or fp32, fp16, bf16, half)")
    return text


def config_dtype(config: Any) -> str | None:
    """The floating dtype a config was published in (``dtype`` / ``torch_dtype``), if steelyard builds in it."""
    for key in ("dtype", "torch_dtype"):
        value = getattr(config, key, None)
        name = str(value).removeprefix("torch.") if value is not None else None
        if name in DTYPES:
            return name
    return None


def check_device(device: str, dtype: str) -> None:
    """Refuse a device this machine lacks, or a dtype that device cannot compute in."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device '{device}'; use cpu or cuda[:N]") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DtypeUnsupportedError(f"device '{device}' requested but CUDA is not available on this machine")
        index = dev.index or 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device '{device}' does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
        if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
            raise DtypeUnsupportedError(f"bfloat16 is not supported on {torch.cuda.get_device_name(index)}; "
                                        "use float16")
    elif dev.type not in ("cpu", "meta"):
        raise ConfigError(f"unsupported device '{device}'; use cpu or cuda[:N]")


def torch_dtype(name: str) -> Any:
    import torch

    return {
        "float32": torch.float32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "int64": torch.int64,
        "int32": torch.int32,
    }[name]


#: Longest name of one path component on common file systems (bytes).
NAME_MAX = 255


def check_source_name(source: str) -> None:
    """A name no loader could open (a path component over 255 bytes, a NUL byte) is a one-line error,
    not an ``OSError: File name too long`` from the first loader that looks for the file."""
    if "\0" in source:
        raise ModelSourceError("the model name holds a NUL byte")
    long = max((len(part.encode("utf-8", "surrogateescape")) for part in source.split("/")), default=0)
    if long > NAME_MAX:
        raise ModelSourceError(f"the model name '{source[:40]}…' ({len(source):,} characters) is no hub id, "
                               f"factory or path: a part of it is over {NAME_MAX} bytes long")


def load_model(source: str, cfg: LoadConfig | None = None) -> ModelHandle:
    """Build a handle for ``source`` with the first registered loader that recognises it."""
    cfg = cfg or LoadConfig()
    check_source_name(source)
    found = find_loader(source, cfg)
    if found is None:
        # Only an existing path that is no model can get here: the hub loader takes every other name.
        raise ModelSourceError(
            f"'{source}' is neither a model folder with a config.json nor a config .json file"
        )
    with library_bars(cfg.library_progress):
        return found[1].load(source, cfg)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (transformers wraps hub errors in ``OSError``)."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 20:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return seen


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


#: The HTTP clients' network errors by class name (httpx, httpx2, requests), so none has to be imported.
_TRANSPORT = frozenset({"TransportError", "NetworkError", "TimeoutException", "ConnectError", "ConnectionError",
                        "ProxyError"})


def _is_transport(exc: BaseException) -> bool:
    return any(cls.__name__ in _TRANSPORT for cls in type(exc).__mro__)


def _offline() -> bool:
    import os

    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("TRANSFORMERS_OFFLINE", "")
    return bool(constants.HF_HUB_OFFLINE) or flag.strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_cause(source: str, exc: BaseException, hint: str = "") -> SteelyardError | None:
    """The one-line error naming the hub's part in a failed load, None when the hub had none.

    transformers turns the hub's typed errors into ``OSError`` messages and keeps the original as the
    cause; this reads the whole chain: a gated or unauthorised repository (log in / pass a token),
    no network or offline mode (``HF_HUB_OFFLINE``), a repository or revision that does not exist
    (not found, with ``hint``: close catalog names), any other hub HTTP error by its first line.
    """
    from huggingface_hub import errors as hub

    chain = _chain(exc)

    def find(*types: type) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    if find(hub.GatedRepoError) is not None:
        return ModelSourceError(
            f"model '{source}' is a gated repository: request access on https://huggingface.co/{source}, then log "
            "in with `hf auth login` or set HF_TOKEN to a token that has access")
    denied = next((e for e in chain if _status(e) in (401, 403)
                   and not isinstance(e, (hub.RepositoryNotFoundError, hub.RevisionNotFoundError))), None)
    if denied is not None:
        return ModelSourceError(
            f"the Hugging Face hub refused access to '{source}' (HTTP {_status(denied)}): log in with "
            "`hf auth login` or set HF_TOKEN to a valid token with access to it")
    if find(hub.RevisionNotFoundError) is not None:
        return ModelSourceError(f"model '{source}': the requested revision does not exist on the Hugging Face hub")
    if find(hub.RepositoryNotFoundError, hub.HFValidationError) is not None:
        return ModelSourceError(
            f"model '{source}' not found: not a local path, not a factory 'module:function', not in the catalog, "
            f"and no such repository on the Hugging Face hub (if it is private, log in with `hf auth login` or set "
            f"HF_TOKEN){hint}")
    offline = find(hub.LocalEntryNotFoundError, hub.OfflineModeIsEnabled)
    network = find(ConnectionError, TimeoutError) or next((e for e in chain if _is_transport(e)), None)
    if offline is not None or network is not None:
        if _offline():
            return ModelSourceError(
                f"model '{source}' not found in the local Hugging Face cache, and the hub is switched off "
                f"(offline: HF_HUB_OFFLINE=1): download it once online, or unset HF_HUB_OFFLINE{hint}")
        return ModelSourceError(
            f"cannot reach the Hugging Face hub to fetch '{source}' (offline or network error: "
            f"{_first_line(network or offline)}); check the connection, or set HF_HUB_OFFLINE=1 to use "
            f"only cached models{hint}")
    http = find(hub.HfHubHTTPError)
    if http is not None:
        return ModelSourceError(f"the Hugging Face hub failed for '{source}': {_first_line(http)}")
    return None


def hub_failure(source: str, exc: BaseException, hint: str = "") -> SteelyardError:
    """The one-line error for a hub id whose config failed to load: the hub's cause
    (:func:`hub_cause`), else transformers' own error by its first line."""
    cause = hub_cause(source, exc, hint)
    if cause is not None:
        return cause
    if isinstance(exc, OSError):  # transformers' own file errors: a repository without a config.json, ...
        return ModelSourceError(f"cannot load '{source}': {_first_line(exc)}")
    fix = ""
    if "trust_remote_code" in str(exc):  # transformers says how on a later line, in its own API's words
        fix = "; pass --trust-remote-code (LoadConfig(trust_remote_code=True)) only if you trust that code"
    return UnsupportedConfigError(f"'{source}': {_first_line(exc)}{fix}")  # unknown architecture, remote code, ...
