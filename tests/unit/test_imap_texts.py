"""Courier's texts are reachable from the transcripts they were taken from."""

from __future__ import annotations

from pathlib import Path

import pytest

from courierpy.imap import texts

TRANSCRIPTS = Path("/work/shared/spec/courier-transcripts")


def test_texts_are_single_lines() -> None:
    names = [n for n in dir(texts) if n.isupper()]
    assert len(names) > 50
    for n in names:
        value = getattr(texts, n)
        assert isinstance(value, str) and value and "\r" not in value and "\n" not in value


def test_texts_appear_in_the_captured_sessions() -> None:
    if not TRANSCRIPTS.is_dir():
        pytest.skip("the spec transcripts are not on this machine")
    corpus = "\n".join(p.read_text("utf-8", "replace") for p in TRANSCRIPTS.glob("imap-*.txt"))
    for name in (
        "GREETING",
        "LOGIN_OK",
        "LOGIN_FAILED",
        "LOGOUT_BYE",
        "NAMESPACE_OK",
        "APPEND_TRYCREATE",
        "COPY_TRYCREATE",
        "OVER_QUOTA",
        "FETCH_OK",
        "SEARCH_OK",
        "STATUS_OK",
        "NO_SUCH_MAILBOX",
        "CANNOT_CREATE",
        "INVALID_MAILBOX_NAME",
        "RENAME_OPEN_FOLDER",
        "ACL_UPDATED",
        "INVALID_ACL_IDENTIFIER",
        "SETQUOTA_DENIED",
        "ENABLE_OK",
        "IDLE_CONTINUE",
        "ERROR_IN_COMMAND",
        "STARTTLS_REQUIRED",
        "CLOSE_OK",
        "PERMANENTFLAGS_RO",
        "PERMANENTFLAGS_RW",
    ):
        assert getattr(texts, name) in corpus, name
    assert texts.INVALID_SEQUENCE_NUMBER.format(n=4) in corpus
    assert texts.CREATED.format(name="INBOX.Sent") in corpus
