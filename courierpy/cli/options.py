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


def raw_args_command(
    *, config_dir: bool = False, interspersed: bool = True
) -> Callable[[Callable[..., Any]], click.Command]:
    """A click command for a tool that parses Courier's own argument syntax.

    Words such as ``-f file`` or ``-user=bob`` are data for the tool, not click
    options: every word reaches the function as ``args: tuple[str, ...]``.  Only
    ``--help`` (and, with *config_dir*, ``--config-dir DIR``, passed as
    ``config_dir``) are click's.  With *interspersed* false, click's own options
    are recognised only before the first other word.
    """
    settings = {
        "ignore_unknown_options": True,
        "allow_interspersed_args": interspersed,
        "help_option_names": ["--help"],
    }

    def decorate(func: Callable[..., Any]) -> click.Command:
        func = click.argument("args", nargs=-1, type=click.UNPROCESSED)(func)
        if config_dir:
            func = config_dir_option(func)
        return click.command(context_settings=settings)(func)

    return decorate
