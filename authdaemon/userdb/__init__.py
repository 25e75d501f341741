"""Courier userdb: the text source, its GDBM compile, and the tools' logic."""
