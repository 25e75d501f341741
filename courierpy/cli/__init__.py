"""Command-line tools with Courier's names, options and exit codes (click)."""
