"""``steelyard hardware list``: the catalog, with the source of each number."""

from __future__ import annotations

from typing import Annotated

import typer

from steelyard.cli.common import QuietOpt, console, json_option, save_outputs

JsonOut = json_option("the catalog")


hardware_app = typer.Typer(help="The hardware catalog.", no_args_is_help=True)


@hardware_app.command("list")
def list_command(
    sources: Annotated[bool, typer.Option("--sources/--no-sources", help="print where each number comes from")] = True,
    local: Annotated[bool, typer.Option(help="also measure this machine")] = False,
    json_out: JsonOut = None,
    quiet: QuietOpt = False,
) -> None:
    """List catalog devices: memory, bandwidth, peak FLOP/s per dtype, power, price."""
    from steelyard.hardware import catalog_defaults, detect_local, load_catalog
    from steelyard.reporting.console import render_hardware_catalog

    specs = list(load_catalog().values())
    if local:
        specs.insert(0, detect_local(measure=True))
    save_outputs({"devices": [s.to_dict() for s in specs]}, json_out)
    render_hardware_catalog(specs, console, show_sources=sources)
    d = catalog_defaults()
    console.print(
        f"defaults: grid {d.grid_kg_co2_per_kwh} kg CO2e/kWh, PUE {d.pue}, usable memory {d.usable_memory_fraction:.0%}"
    )
    if sources:
        for key, text in d.sources.items():
            console.print(f"  [cyan]defaults[/cyan].{key}: {text}")
