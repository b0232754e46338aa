"""Flag values of the form key:value[,key:value...] (`--volume-containerdisk=src:IMAGE,name:disk`),
as upstream's `virtctl create` takes them. A value may itself contain ':' (image tags,
registry ports), so each pair splits at its first ':'."""

from __future__ import annotations

from collections.abc import Iterable

import click


def parse_params(flag: str, value: str, supported: Iterable[str]) -> dict[str, str]:
    allowed = tuple(supported)
    params: dict[str, str] = {}
    unknown: list[str] = []
    for pair in filter(None, value.split(",")):
        key, sep, val = pair.partition(":")
        if not sep:
            raise click.BadParameter(f"params need to have at least one colon: {pair}", param_hint=f"'--{flag}'")
        if key not in allowed:
            unknown.append(pair)
            continue
        if key in params:
            raise click.BadParameter(f"param {key!r} was given more than once", param_hint=f"'--{flag}'")
        params[key] = val
    if unknown:
        raise click.BadParameter(f"unknown param(s): {','.join(unknown)}; supported: {', '.join(allowed)}",
                                 param_hint=f"'--{flag}'")
    return params


def boot_order(flag: str, params: dict[str, str]) -> int | None:
    if "bootorder" not in params:
        return None
    try:
        order = int(params["bootorder"])
    except ValueError:
        raise click.BadParameter(f"bootorder must be a number, got {params['bootorder']!r}",
                                 param_hint=f"'--{flag}'") from None
    if order <= 0:
        raise click.BadParameter("bootorder must be greater than 0", param_hint=f"'--{flag}'")
    return order
