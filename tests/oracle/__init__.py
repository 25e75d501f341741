"""Differential tests against the real Courier programs (Debian packages)."""
