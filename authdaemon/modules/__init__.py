"""Authentication modules: the backends authdaemond tries in ``authmodulelist`` order.

A module answers the four requests. Each method has three outcomes, Courier's
return codes in Python form:

- a result (an :class:`~courierpy.authproto.AuthInfo`, ``True``, an iterator):
  OK, the daemon answers and stops;
- ``None`` (``False`` for ``passwd``): REJECT, the daemon tries the next module;
- :class:`ModuleTempFail` raised: TEMPFAIL, the daemon stops and sends nothing.

Modules are created by :func:`load_modules` from their Courier names
(``authuserdb``, ...); an unknown name is a :class:`UnknownModuleError`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from courierpy.authproto import AuthInfo, EnumEntry
from courierpy.errors import EX_CONFIG, CourierError

__all__ = [
    "AuthModule",
    "DebugLog",
    "MODULES",
    "PLAIN",
    "authinfo_summary",
    "ModuleContext",
    "ModuleTempFail",
    "UnknownModuleError",
    "load_modules",
]

#: Courier module name -> "python.module:Class" implementing it.
MODULES: Mapping[str, str] = MappingProxyType(
    {
        "authuserdb": "authdaemon.modules.userdb:UserdbModule",
    }
)


class ModuleTempFail(CourierError):
    """A backend cannot answer right now (database down, ...): no reply at all."""


class UnknownModuleError(CourierError):
    """``authmodulelist`` names a module we do not have."""

    exit_code = EX_CONFIG

    def __init__(self, name: str) -> None:
        self.name = name
        known = ", ".join(sorted(MODULES))
        super().__init__(f"authmodulelist: unknown authentication module {name!r} (known: {known})")


class DebugLog:
    """Courier's DEBUG_LOGIN: 0 silent, 1 debug messages, 2 also passwords."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger = logger
        self.level = level

    @property
    def enabled(self) -> bool:
        return self.level >= 1

    @property
    def passwords(self) -> bool:
        return self.level >= 2

    def __call__(self, message: str) -> None:
        if self.level >= 1:
            self.logger.debug(message)

    def secret(self, with_secret: str, without: str = "") -> None:
        """Log *with_secret* at level 2, *without* (if any) at level 1."""
        if self.level >= 2:
            self.logger.debug(with_secret)
        elif self.level >= 1 and without:
            self.logger.debug(without)

    def plain(self, message: str) -> None:
        """A debug line without the ``DEBUG:`` prefix (Courier's ``Authenticated:`` lines)."""
        if self.level >= 1:
            self.logger.log(PLAIN, message)


#: Log level of lines written without a ``LEVEL:`` prefix.
PLAIN = 15


def authinfo_summary(info: AuthInfo) -> str:
    """An account as Courier's debug log shows it."""

    def null(value: object) -> str:
        return "<null>" if value is None else str(value)

    return (
        f"sysusername={null(info.sysusername)}, sysuserid={null(info.uid)}, "
        f"sysgroupid={info.gid}, homedir={info.home}, address={null(info.address)}, "
        f"fullname={null(info.fullname)}, maildir={null(info.maildir)}, "
        f"quota={null(info.quota)}, options={null(info.options)}"
    )


@dataclass(frozen=True)
class ModuleContext:
    """What every module gets: the config directory and the debug log."""

    confdir: Path
    debug: DebugLog


class AuthModule(Protocol):
    """What authdaemond needs from a backend (see the module docstring)."""

    #: Courier's name for it, e.g. ``authuserdb``.
    name: str

    def pre(self, service: str, userid: str) -> AuthInfo | None: ...

    def auth(self, service: str, authtype: str, authdata: str) -> AuthInfo | None: ...

    def passwd(self, service: str, userid: str, oldpw: str, newpw: str) -> bool: ...

    def enumerate(self) -> Iterator[EnumEntry] | None:
        """Every account, or None when the backend cannot list them."""
        ...

    def close(self) -> None: ...


def load_modules(names: Sequence[str], ctx: ModuleContext) -> list[AuthModule]:
    """Instantiate the modules of *names*, in order; raise on an unknown one."""
    for name in names:
        if name not in MODULES:
            raise UnknownModuleError(name)
    modules: list[AuthModule] = []
    for name in names:
        module_path, _, cls_name = MODULES[name].partition(":")
        cls = getattr(importlib.import_module(module_path), cls_name)
        modules.append(cls(ctx))
    return modules
