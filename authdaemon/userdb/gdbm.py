"""Compatibility re-export: the GDBM binding now lives in :mod:`courierpy.gdbm`.

couriertcpd's access file needs it too, and courierpy must not import
authdaemon, so the code moved to the shared base; import from there.
"""

from __future__ import annotations

from courierpy.gdbm import GdbmError, GdbmFile, GdbmNotFound, Mode, open_gdbm

__all__ = ["GdbmError", "GdbmFile", "GdbmNotFound", "Mode", "open_gdbm"]
