"""YAML in and out: loading that remembers line numbers, dumping that is byte-for-byte stable.

Loading is bounded: a settings file is small, so anything larger, deeper or more aliased than a
real one could be is refused before it can hang the tool or eat the machine's memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stack.fileio import UnreadableFile, read_bounded, size_text

KeyPath = tuple[str | int, ...]

# The largest stack.yaml we ship with every key written out is ~10 KiB; 1 MiB is 100 times that.
MAX_BYTES = 1024 * 1024
# Nesting deeper than this is no settings file (and PyYAML's composer recurses once per level).
MAX_DEPTH = 64
# Nodes after expanding every alias: bounds the "billion laughs" bomb, far above any real file.
MAX_NODES = 100_000


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


class YamlLimitError(YamlSyntaxError):
    """A document past the size, depth or alias-expansion bound (see MAX_* above)."""


def _check_bounds(text: str, max_nodes: int = MAX_NODES) -> None:
    """Refuse a too-deep or alias-bomb document from the parser's events, before composing.

    Works on the flat event stream, so neither the nesting nor the aliases are ever expanded: each
    anchored node records its expanded size and height, and an alias adds those.
    """
    # One frame per open collection: [expanded node count, height of its tallest child, anchor].
    stack: list[list[Any]] = []
    sizes: dict[str, tuple[int, int]] = {}
    total = 0

    def add(count: int, height: int, line: int) -> None:
        nonlocal total
        total += count
        if len(stack) + height > MAX_DEPTH:
            raise YamlLimitError(f"nested deeper than {MAX_DEPTH} levels", line)
        if total > max_nodes:
            raise YamlLimitError(f"expands to more than {max_nodes} nodes through aliases", line)
        if stack:
            stack[-1][0] += count
            stack[-1][1] = max(stack[-1][1], height)

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.CollectionStartEvent):
            add(1, 1, line)
            stack.append([1, 0, event.anchor])
        elif isinstance(event, yaml.CollectionEndEvent):
            count, height, anchor = stack.pop()
            if stack:
                # Its own node is already counted in the parent; pass up its children and height.
                stack[-1][0] += count - 1
                stack[-1][1] = max(stack[-1][1], height + 1)
            if anchor:
                sizes[anchor] = (count, height + 1)
        elif isinstance(event, yaml.ScalarEvent):
            add(1, 1, line)
            if event.anchor:
                sizes[event.anchor] = (1, 1)
        elif isinstance(event, yaml.AliasEvent):
            count, height = sizes.get(event.anchor or "", (1, 1))
            add(count, height, line)


def loads(text: str, *, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> LoadedYaml:
    """Parse one YAML document, keeping the line of every key; raise YamlSyntaxError.

    Raises YamlLimitError for a document past `max_bytes`, MAX_DEPTH or `max_nodes`.
    """
    if len(text) > max_bytes:
        raise YamlLimitError(f"larger than {size_text(max_bytes)}", None)
    try:
        _check_bounds(text, max_nodes)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
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


def load_file(path: Path, *, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> LoadedYaml:
    """Read and parse a YAML file: a regular file of at most `max_bytes` (see `loads`)."""
    try:
        data = read_bounded(path, max_bytes)
    except UnreadableFile as exc:
        raise YamlLimitError(str(exc).removeprefix("is "), None) from None
    return loads(data.decode("utf-8"), max_bytes=max_bytes, max_nodes=max_nodes)


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
