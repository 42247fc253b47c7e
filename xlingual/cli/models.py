"""``xlingual models``: the built-in offline models and their state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from xlingual.cli.base import CONTEXT_SETTINGS, echo_json, setup_logging
from xlingual.cli.options import json_option


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--convert", is_flag=True, help="Convert builtin:me5-small now if it is not yet converted.")
@json_option("One JSON object per built-in.")
def models(convert: bool, as_json: bool) -> None:
    """List the built-in models: installed, converted, size and dimension.

    \b
    Example:
        xlingual models --convert
    """
    from xlingual.models import specs as model_lib

    setup_logging(quiet=as_json)
    if convert:
        model_lib.ensure_me5_small()
    statuses = model_lib.builtin_status()
    if as_json:
        for status in statuses:
            echo_json(status.as_dict())
        return
    click.echo("\n".join(_table(statuses)))
    if any(s.converted is False for s in statuses):
        click.echo("\nbuiltin:me5-small is converted on first use (about 30 s), or now with: xlingual models --convert")


def _table(statuses: Sequence[Any]) -> list[str]:
    """One header line and one line per built-in model status."""
    lines = [f"{'spec':<20} {'role':<8} {'installed':<10} {'converted':<10} {'dim':>4} {'size':>9}  source"]
    for s in statuses:
        converted = "-" if s.converted is None else ("yes" if s.converted else "no")
        size = f"{s.size_mb:.0f} MB" if s.size_mb is not None else "-"
        lines.append(
            f"{s.spec:<20} {s.role:<8} {'yes' if s.installed else 'no':<10} {converted:<10} "
            f"{s.dim:>4} {size:>9}  {s.package}"
        )
    return lines
