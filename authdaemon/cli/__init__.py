"""Command-line tools of the auth side, with courier-authlib's names and options."""
