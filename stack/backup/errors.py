"""Errors of backup and restore."""

from __future__ import annotations

from stack.errors import StackError


class BackupError(StackError):
    """A backup or restore step failed (the archive, if any, was not written)."""


class BadArchive(StackError):
    """The archive is not one we can trust: truncated, corrupted, unsafe or of an unknown format."""
