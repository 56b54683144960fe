"""Options shared by every command (set by the top-level callback)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class GlobalOptions:
    debug: bool = False
    store_url: str | None = None
    #: The recorded run's ``--name`` / ``--tag`` (a RunLabels; set by ``cli.run_options.records_run``).
    labels: Any = None
    #: The command line that reruns the recording command (``cli.run_options.invocation``).
    command: str | None = None


OPTIONS = GlobalOptions()
