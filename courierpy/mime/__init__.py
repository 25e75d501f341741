"""MIME for IMAP: a fast header split, a part tree with offsets, and the wire forms.

- :mod:`courierpy.mime.headers` — header-block splitting over bytes, decoding helpers
- :mod:`courierpy.mime.envelope` — the ENVELOPE members parsed from a header block
- :mod:`courierpy.mime.tree` — the part tree with byte offsets and CRLF sizes
- :mod:`courierpy.mime.imapwire` — ENVELOPE/BODY/BODYSTRUCTURE bytes, BODY[section] data
"""
