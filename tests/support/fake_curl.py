"""What `curl --config -` inside a container does, for the stand-in `docker`: read the request from
the curl config on stdin, send it to a test server (the fake Grafana) instead of the container's own
127.0.0.1, and print the answer the way `curl --include` does."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

# `option`, `option = "quoted value"` or `option = bare-value`, as curl's config syntax allows.
_LINE = re.compile(r'^([a-z-]+)(?:\s*[=:]?\s*(?:"((?:[^"\\]|\\.)*)"|(\S+)))?$')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n", "\\r": "\r", "\\t": "\t"}


def _unquote(value: str) -> str:
    return re.sub(r"\\[\\\"nrt]", lambda m: _ESCAPES[m.group(0)], value)


def parse_config(text: str) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            raise ValueError(f"not a curl config line: {line!r}")
        value = _unquote(match.group(2)) if match.group(2) is not None else (match.group(3) or "")
        options.setdefault(match.group(1), []).append(value)
    return options


def answer(config: str, target: str) -> str:
    options = parse_config(config)
    url = re.sub(r"^http://127\.0\.0\.1:\d+", target, options["url"][0])
    data = options["data-binary"][0].encode() if "data-binary" in options else None
    request = urllib.request.Request(url, data=data, method=options.get("request", ["GET"])[0])
    for header in options.get("header", []):
        key, _, value = header.partition(":")
        if value.strip():
            request.add_header(key.strip(), value.strip())
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            status, reason, headers, body = reply.status, reply.reason, reply.headers, reply.read()
    except urllib.error.HTTPError as error:
        status, reason, headers, body = error.code, error.reason, error.headers, error.read()
    head = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    return f"HTTP/1.1 {status} {reason}\r\n{head}\r\n{body.decode()}"
