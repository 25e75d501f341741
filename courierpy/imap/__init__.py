"""The IMAP protocol core, without I/O.

``tokens`` (lexer and grammar primitives), ``grammar`` (the resumable command
reader), ``state`` (the command table: states, flags, argument grammar),
``seqset``, ``searchkeys``, ``fetchatts``, ``responses`` and ``errors``.
The I/O loop and the command handlers build on these.
"""
