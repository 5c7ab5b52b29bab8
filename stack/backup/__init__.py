"""Backup and restore of a stack's state, through the runtime interface only (never Docker directly).

`create.create_backup`, `verify.verify_backup` and `restore.restore_backup` are the entry points;
`archive` is the on-disk format, `registry` lists the per-component steps.
"""
