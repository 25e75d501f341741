"""Wire-level pieces shared by the IMAP and POP3 cores: no I/O, no protocol state."""
