"""``steelyard hardware list``: the catalog, with the source of each number; and the options every
command that projects onto hardware shares (``--catalog``, ``--grid-intensity``, ``--pue``, ``--price``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from steelyard.cli.common import QuietOpt, console, json_option, save_outputs
from steelyard.cli.options import Group, with_options
from steelyard.hardware.settings import HardwareSettings

JsonOut = json_option("the catalog")


hardware_app = typer.Typer(help="The hardware catalog.", no_args_is_help=True)

#: ``--catalog``, ``--grid-intensity``, ``--pue`` and ``--price``, from :class:`HardwareSettings`' fields.
HARDWARE = Group.of(HardwareSettings)


def apply_hardware_options(opts: dict[str, Any], hardware: str = "") -> HardwareSettings:
    """Build the settings from the parsed options and make them the process's catalog (before any work)."""
    settings = HARDWARE.build(opts)
    settings.apply([h for h in hardware.split(",") if h.strip()])
    return settings


@hardware_app.command("list")
@with_options(HARDWARE)
def list_command(
    sources: Annotated[bool, typer.Option("--sources/--no-sources", help="print where each number comes from")] = True,
    local: Annotated[bool, typer.Option(help="also measure this machine")] = False,
    json_out: JsonOut = None,
    quiet: QuietOpt = False,
    *,
    opts: dict[str, Any],
) -> None:
    """List catalog devices: memory, bandwidth, peak FLOP/s per dtype, power, price."""
    from steelyard.hardware import catalog_defaults, detect_local, load_catalog, user_catalog_path
    from steelyard.reporting.console import render_catalog_defaults, render_hardware_catalog

    apply_hardware_options(opts)
    specs = list(load_catalog().values())
    if local:
        specs.insert(0, detect_local(measure=True))
    save_outputs({"devices": [s.to_dict() for s in specs]}, json_out)
    render_hardware_catalog(specs, console, show_sources=sources)
    render_catalog_defaults(catalog_defaults(), user_catalog_path(), console, show_sources=sources)
