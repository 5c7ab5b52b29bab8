"""Moved to `stack.net.address`; kept while the runtime modules still import it from here."""

from __future__ import annotations

from stack.net.address import http_url, shown_host, url_host

__all__ = ["http_url", "shown_host", "url_host"]
