"""YAML with positions: load a config file keeping the line and column of every key and value.

pydantic reports errors by dotted location; an operator needs `file:line:col`. This module composes
the YAML node tree (which carries marks), expands `${VAR}` / `${VAR:-default}` in scalars, and builds
plain Python data plus a map from key path to position, so every later error can name its place.

A config file is also untrusted input: bytes that are not UTF-8, a tag asking for a Python object or
any other non-plain type, and an "alias bomb" (anchors referencing anchors, a few lines that expand to
billions of values) are each reported as an issue at their place instead of raising or hanging.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

# Plain YAML only: what SafeLoader resolves untagged scalars, lists and mappings to.
PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)
MAX_VALUES = 10_000
"""A real config has a few hundred values; more, after expanding aliases, is an alias bomb."""

_ENV = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Position:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class SourceIssue:
    position: Position
    key: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.position} {self.key}: {self.message}" if self.key else f"{self.position} {self.message}"
        )


@dataclass
class YamlDocument:
    """Plain data from a YAML file plus where each key path sits in it."""

    file: str
    data: Any
    key_positions: dict[Path_, Position] = field(default_factory=dict)
    value_positions: dict[Path_, Position] = field(default_factory=dict)
    issues: list[SourceIssue] = field(default_factory=list)
    built: int = 0  # values built so far, to stop alias bombs

    def position_of(self, path: Path_) -> Position:
        """The key's position if it exists, else that of the nearest enclosing key present."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.key_positions:
                return self.key_positions[prefix]
            if prefix in self.value_positions:
                return self.value_positions[prefix]
        return Position(self.file, 1, 1)


def dotted(path: Path_) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")


def load_yaml(path: Path, environ: Mapping[str, str] | None = None) -> YamlDocument:
    """Read and parse `path`; syntax errors and missing variables become `issues`, not exceptions."""
    env = os.environ if environ is None else environ
    name = str(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _failed(
            name, _byte_position(name, raw, exc.start), f"not UTF-8 text (byte {raw[exc.start]:#04x})"
        )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        position = Position(name, mark.line + 1, mark.column + 1) if mark else Position(name, 1, 1)
        return _failed(name, position, f"invalid YAML: {exc.problem}")
    except yaml.YAMLError as exc:
        return _failed(name, Position(name, 1, 1), f"invalid YAML: {exc}")
    except RecursionError:
        return _failed(name, Position(name, 1, 1), "invalid YAML: nested too deeply")
    document = YamlDocument(name, None)
    try:
        document.data = _build(node, (), document, env) if node is not None else {}
    except _Refused as refused:
        return _failed(name, refused.position, refused.message)
    except RecursionError:
        return _failed(name, Position(name, 1, 1), "nested too deeply")
    return document


class _Refused(Exception):
    """A node that makes the whole document unusable (a forbidden tag, an alias bomb)."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def _failed(name: str, position: Position, message: str) -> YamlDocument:
    return YamlDocument(name, None, issues=[SourceIssue(position, "", message)])


def _byte_position(name: str, raw: bytes, offset: int) -> Position:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return Position(name, raw.count(b"\n", 0, offset) + 1, offset - line_start + 1)


def _position(document: YamlDocument, node: yaml.Node) -> Position:
    return Position(document.file, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(node: yaml.Node, path: Path_, document: YamlDocument, env: Mapping[str, str]) -> Any:
    position = _position(document, node)
    if node.tag not in PLAIN_TAGS:
        raise _Refused(position, f"YAML tag {node.tag!r} is not allowed in a config (plain values only)")
    document.built += 1
    if document.built > MAX_VALUES:
        raise _Refused(
            position, f"more than {MAX_VALUES} values (after expanding aliases): refusing an alias bomb"
        )
    document.value_positions[path] = position
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node, document))
            child = (*path, key)
            if key in result:
                document.issues.append(
                    SourceIssue(_position(document, key_node), dotted(child), "duplicate key")
                )
            document.key_positions[child] = _position(document, key_node)
            result[key] = _build(value_node, child, document, env)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), document, env) for i, item in enumerate(node.value)]
    value = _scalar(node, document)
    if isinstance(value, str) and "$" in value:
        return _expand(value, path, _position(document, node), document, env)
    return value


def _scalar(node: yaml.Node, document: YamlDocument) -> Any:
    if node.tag not in PLAIN_TAGS:
        raise _Refused(
            _position(document, node), f"YAML tag {node.tag!r} is not allowed in a config (plain values only)"
        )
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        raise _Refused(_position(document, node), f"invalid value: {exc}") from None
    finally:
        loader.dispose()


def _expand(
    value: str, path: Path_, position: Position, document: YamlDocument, env: Mapping[str, str]
) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in env:
            return env[name]
        if default is not None:
            return default
        document.issues.append(
            SourceIssue(
                position,
                dotted(path),
                f"environment variable {name} is not set (and no ${{{name}:-default}})",
            )
        )
        return ""

    return _ENV.sub(replace, value)
