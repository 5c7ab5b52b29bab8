"""YAML in and out: loading that remembers line numbers, dumping that is byte-for-byte stable."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]


class YamlSyntaxError(ValueError):
    """Malformed YAML, with the 1-based line where the parser stopped."""

    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


@dataclass
class LoadedYaml:
    """A parsed document and the line of every key in it (1-based), by key path."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return None


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key in seen:
                raise YamlSyntaxError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines)


def loads(text: str) -> LoadedYaml:
    """Parse one YAML document, keeping the line of every key; raise YamlSyntaxError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        raise YamlSyntaxError(problem, mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc).splitlines()[0], None) from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return LoadedYaml(data=data, lines=lines)


def load_file(path: Path) -> LoadedYaml:
    """Read and parse a YAML file (see `loads`)."""
    return loads(path.read_text(encoding="utf-8"))


class _StableDumper(yaml.SafeDumper):
    """Block style, insertion order, literal blocks for multi-line strings."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_StableDumper.add_representer(str, _represent_str)


def dumps(data: Any) -> str:
    """Dump `data` as block-style YAML, keys in insertion order; same input, same bytes."""
    return yaml.dump(
        data,
        Dumper=_StableDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )


def deep_merge(base: Any, override: Any) -> Any:
    """Merge `override` into a copy of `base`: mappings merge key by key, anything else replaces.

    A `null` in the override deletes the key, so an override can remove a default.
    """
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = deep_merge(merged[key], value)
            else:
                merged[key] = value
        return merged
    return override
