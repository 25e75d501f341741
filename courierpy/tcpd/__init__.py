"""couriertcpd: listen, limits, the access file, fork/exec and the child's environment.

- :mod:`~courierpy.tcpd.access` — the access database: lookup keys for an
  address, most-specific match, the ``allow,VAR=val``/``deny`` values.
- :mod:`~courierpy.tcpd.makedat` — compiling access text into the GDBM file.
- :mod:`~courierpy.tcpd.limits` — connection-slot accounting (no I/O).
- :mod:`~courierpy.tcpd.options` — Courier's command line, parsed exactly.
- :mod:`~courierpy.tcpd.server` — the sockets, the accept loop, the children.
"""
