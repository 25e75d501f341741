"""IMAP command handlers, one module per group; ``HANDLERS`` maps names to them.

Every handler takes ``(session, command)``, sends its untagged responses
through the session, ends with the tagged response, and raises an
``ImapError`` for a refusal (the session turns it into the answer).
"""

from __future__ import annotations

from collections.abc import Callable

from courierpy.imap.commands import anystate, auth, mailboxes, messages, quota_acl, selected, sort

__all__ = ["HANDLERS"]

HANDLERS: dict[str, Callable[..., None]] = {}
for _module in (anystate, auth, mailboxes, selected, messages, quota_acl, sort):
    HANDLERS.update(_module.HANDLERS)
