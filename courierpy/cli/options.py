"""Options and helpers shared by every command-line tool."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from courierpy.config import DEFAULT_CONFIG_DIR, resolve_config_dir

F = TypeVar("F", bound=Callable[..., Any])


def config_dir_option(func: F) -> F:
    """Add ``--config-dir DIR`` (else ``$COURIER_CONFDIR``, else /etc/courier).

    The decorated command receives ``config_dir: pathlib.Path``.
    """

    def _resolve(ctx: click.Context, param: click.Parameter, value: str | None) -> Path:
        return resolve_config_dir(value, os.environ)

    return click.option(
        "--config-dir",
        "config_dir",
        metavar="DIR",
        default=None,
        callback=_resolve,
        expose_value=True,
        help=f"Configuration directory (default: $COURIER_CONFDIR, else {DEFAULT_CONFIG_DIR}).",
    )(func)
