"""The environment every measurement is recorded with: machine, threads, library versions."""

from __future__ import annotations

import platform
import socket
from importlib import metadata

from steelyard.profiling.report import Environment
from steelyard.units import Bytes


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def current_environment(device: str = "cpu") -> Environment:
    import psutil
    import torch

    from steelyard.hardware.local import cpu_model_name

    device_name = cpu_model_name()
    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(torch.device(device))
    return Environment(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=platform.python_version(),
        cpu_model=cpu_model_name(),
        physical_cores=psutil.cpu_count(logical=False) or 1,
        logical_cores=psutil.cpu_count(logical=True) or 1,
        threads=torch.get_num_threads(),
        ram=Bytes(psutil.virtual_memory().total),
        torch=torch.__version__,
        transformers=_version("transformers"),
        device=device,
        device_name=device_name,
        steelyard=_version("steelyard") or "dev",
    )
