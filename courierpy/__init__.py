"""courierpy: Courier's IMAP/POP3 servers and Maildir++ tools, in Python.

The mail side of the project (the counterpart of courier-imap) and the shared
base that the auth side (:mod:`authdaemon`) builds on.
"""

__version__ = "0.1.0"
