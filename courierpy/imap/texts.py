"""Courier-IMAP's exact response texts, shared by the handlers and the tests.

Clients show these texts to users and scripts match them, so a drop-in keeps
them (style.md example 14).  Each was captured from the real Courier-IMAP
5.0.13 (/work/shared/spec/courier.md §4.4-4.6 and runs of /usr/bin/imapd);
``{name}`` and ``{n}`` are filled in with ``str.format``.
"""

from __future__ import annotations

from courierpy.imap.errors import ERROR_IN_COMMAND

__all__ = ["ERROR_IN_COMMAND"]  # and every UPPER_CASE name below

# --- greeting, session
GREETING = (
    "Courier-IMAP ready. Copyright 1998-2019 Double Precision, Inc.  "
    "See COPYING for distribution information."
)
PREAUTH = "Ready."
LOGIN_OK = "LOGIN Ok."
LOGIN_FAILED = "Login failed."
LOGOUT_BYE = "Courier-IMAP server shutting down"
LOGOUT_OK = "LOGOUT completed"
CAPABILITY_OK = "CAPABILITY completed"
NOOP_OK = "NOOP completed"
STARTTLS_OK = "Begin SSL/TLS negotiation now."
STARTTLS_REQUIRED = "STARTTLS required"
TEMPORARY_PROBLEM = "Temporary problem, please try again later"
ACCESS_DISABLED = "IMAP access disabled for this account."
STICKY_HOME = "Your account is temporarily unavailable (+t bit set on home directory)."
#: a required argument is missing (SELECT, LIST "", COPY 1): Courier's only BAD
INVALID_COMMAND = "Invalid command"
ENABLE_OK = "Options enabled"
IDLE_CONTINUE = "entering idle mode"
IDLE_OK = "IDLE completed"

# --- mailboxes
NAMESPACE_OK = "NAMESPACE completed."
LIST_OK = "LIST completed"
LSUB_OK = "LSUB completed"
CREATED = '"{name}" created.'
CANNOT_CREATE = "Cannot create this folder."
INVALID_MAILBOX_NAME = "Invalid mailbox name."
RENAMED = "Folder renamed."
RENAME_OPEN_FOLDER = "Can't RENAME the currently-open folder"
RENAME_INBOX = "INBOX rename not implemented."
DELETED = "Folder deleted."
NO_SUCH_MAILBOX = "Mailbox does not exist, or must be subscribed to."
SUBSCRIBED = "Folder subscribed."
UNSUBSCRIBED = "Folder unsubscribed."
STATUS_OK = "STATUS Completed."

# --- SELECT / EXAMINE
SELECT_OK = "Ok"  # with [READ-WRITE] or [READ-ONLY]
PERMANENTFLAGS_RW = "Limited"
PERMANENTFLAGS_RO = "No permanent flags permitted"
UIDVALIDITY_OK = "Ok"
MYRIGHTS_ACL = "ACL"
CLOSE_OK = "mailbox closed."
CHECK_OK = "CHECK completed"
EXPUNGE_OK = "EXPUNGE completed"

# --- messages
APPEND_OK = "APPEND Ok."
APPEND_TRYCREATE = "Must create mailbox before append"
COPY_OK = "COPY completed."
COPY_TRYCREATE = "Mailbox does not exist."
OVER_QUOTA = "You exceeded your mail quota."  # sent as NO [ALERT]
FETCH_OK = "FETCH completed."
STORE_OK = "STORE completed."
SEARCH_OK = "SEARCH done."
SORT_OK = "SORT done."
THREAD_OK = "THREAD done."
BADCHARSET = "The requested character set is not supported."
#: untagged NO for each number beyond the mailbox in FETCH/STORE/COPY
INVALID_SEQUENCE_NUMBER = "Invalid message sequence number: {n}"

# --- quota and ACL
GETQUOTAROOT_OK = "GETQUOTAROOT Ok."
GETQUOTA_OK = "GETQUOTA Ok."
SETQUOTA_DENIED = "SETQUOTA No permission."
MYRIGHTS_OK = "MYRIGHTS completed."
GETACL_OK = "GETACL completed."
LISTRIGHTS_OK = "LISTRIGHTS completed."
ACL_UPDATED = "ACLs updated."
INVALID_ACL_IDENTIFIER = "Invalid ACL identifier."
CANNOT_MODIFY_ACL = "Cannot modify ACLs on this mailbox."
