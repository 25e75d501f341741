"""MIME for IMAP: a fast header split, a part tree with offsets, and the wire forms.

- :mod:`courierpy.mime.headers` — header-block splitting over bytes, decoding helpers
- :mod:`courierpy.mime.envelope` — the ENVELOPE members parsed from a header block
- :mod:`courierpy.mime.tree` — the part tree with byte offsets and CRLF sizes
- :mod:`courierpy.mime.imapwire` — ENVELOPE/BODY/BODYSTRUCTURE bytes, BODY[section] data

Typical use by FETCH and the per-folder metadata cache (no I/O here except
reading the message file a section is taken from)::

    from courierpy.mime.imapwire import (
        message_wire, parse_section, fetch_section_from_file, open_message)
    from courierpy.mime.tree import Part

    with open_message(path) as buf:             # cache miss: parse once
        wire = message_wire(buf)                # .envelope .bodystructure .body .rfc822_size
    record = (wire.envelope, wire.bodystructure, wire.body, wire.rfc822_size,
              wire.tree.to_json(envelopes=False))           # JSON-able; store it

    tree = Part.from_json(record[4])            # cache hit: offsets without reading
    section = parse_section("1.2.MIME")         # BadSection -> tagged BAD
    data = fetch_section_from_file(path, tree, section, partial=(0, 1024))
    out.write(b"BODY[" + section.wire() + b"]<0> {%d}\\r\\n" % data.size)
    for chunk in data.chunks():                 # streamed, CRLF form
        out.write(chunk)

Header SEARCH reads :class:`~courierpy.mime.headers.HeaderBlock` values and
decodes them with :func:`~courierpy.mime.headers.decode_words`,
:func:`~courierpy.mime.headers.decode_addresses` and
:func:`~courierpy.mime.headers.decode_date`. Where the output deliberately
differs from Courier's, docs/differences.md says so.
"""
