"""The login stage shared by imaplogin and courierpop3login.

``faildelay``  the failed-login delay (Courier's fixed wait plus a growing
               delay for an address or account that keeps failing)
``handoff``    privilege drop, Courier's environment and the exec of the
               session program (through a TLS relay process when the login
               stage holds the TLS session)
``imap``       imaplogin's I/O loop (the pre-authentication half of imapd)
``pop3``       courierpop3login's I/O loop
``logline``    Courier's log line format
"""
