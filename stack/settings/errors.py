"""A pydantic validation error as stack's one line: file, line, key path, message and a hint."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from stack.settings.fields import MAX_PROJECT_LENGTH
from stack.settings.models import Settings
from stack.yamlio import KeyPath, LoadedYaml

_TYPE_WORDS = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes an annotation can hold (through Optional, list, dict and Annotated)."""
    origin = get_origin(annotation)
    if origin is None:
        return [annotation]
    found: list[Any] = []
    for arg in get_args(annotation):
        found.extend(_unwrap(arg))
    return found


def _fields_at(path: KeyPath) -> list[str]:
    """The keys a mapping at `path` accepts (for did-you-mean)."""
    models: list[Any] = [Settings]
    for part in path:
        if isinstance(part, int):
            continue
        nxt: list[Any] = []
        for model in models:
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            for name, info in model.model_fields.items():
                if part in (name, info.alias):
                    nxt.extend(_unwrap(info.annotation))
        models = nxt
    keys: list[str] = []
    for model in models:
        if isinstance(model, type) and issubclass(model, BaseModel):
            keys.extend(info.alias or name for name, info in model.model_fields.items())
    return keys


def describe(error: Any, loaded: LoadedYaml) -> tuple[KeyPath, str, str | None]:
    path: KeyPath = tuple(error["loc"])
    kind = error["type"]
    given = error.get("input")
    hint: str | None
    if kind == "extra_forbidden":
        key = str(path[-1])
        close = difflib.get_close_matches(key, _fields_at(path[:-1]), n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(_fields_at(path[:-1]))}"
        return path, "unknown key", hint
    if kind == "missing":
        return path, "required key is missing", None
    if kind in _TYPE_WORDS:
        return path, f"expected {_TYPE_WORDS[kind]}, got {given!r}", None
    if kind == "literal_error":
        return path, f"{given!r} is not allowed", f"use one of {error['ctx']['expected']}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return path, f"{given!r} is out of range ({error['msg'].lower()})", None
    if kind == "string_pattern_mismatch":
        return path, f"{given!r} has the wrong form", f"expected a match for {error['ctx']['pattern']}"
    if kind == "too_short":
        return path, "must not be empty", None
    if kind == "value_error":
        message = str(error["ctx"]["error"])
        hint = None
        if "Go duration" in message:
            hint = "Prometheus, Loki, Tempo and Alertmanager hold at most 2562047h; use e.g. 10y"
        elif "Go memory limit" in message:
            hint = "use a size such as 256M or 1G"
        elif "duration" in message or "longer than zero" in message:
            hint = "use a positive duration such as 15d, 72h or 30m"
        elif "size" in message or "16M" in message:
            hint = "use a size such as 256M or 1G"
        elif "rule file" in message and path[:2] == ("rules", "loki_files"):
            hint = "give a Loki rule file (`groups:`, LogQL in `expr`) relative to stack.yaml; stack validate checks it"
        elif "rule file" in message:
            hint = "give a Prometheus rule file (`groups:`), relative to stack.yaml; `promtool check rules` checks it"
        elif "secret file" in message:
            hint = "create the file (chmod 600) or fix the path, which is relative to stack.yaml"
        elif "pin a version" in message:
            hint = "e.g. grafana/grafana:13.2.0"
        elif "image reference" in message:
            hint = "[registry/]name:tag or name@sha256:digest, with no spaces or options"
        elif "user name" in message:
            hint = "use a plain login such as admin"
        elif "project name" in message:
            hint = f"use at most {MAX_PROJECT_LENGTH} characters"
        elif "cors_origins" in message:
            hint = "e.g. cors_origins: [https://app.example.com]"
        elif "host name" in message:
            hint = "use the public DNS name of the server"
        return path, message, hint
    return path, error["msg"], None


def where(source: Path | None, loaded: LoadedYaml, path: KeyPath) -> str:
    name = str(source) if source else "stack.yaml (defaults)"
    line = loaded.line_of(path)
    return f"{name}:{line}" if line else name
