"""YAML with positions: load a config file keeping the line and column of every key and value.

pydantic reports errors by dotted location; an operator needs `file:line:col`. This module composes
the YAML node tree (which carries marks), expands `${VAR}` / `${VAR:-default}` in scalars, and builds
plain Python data plus a map from key path to position, so every later error can name its place.
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
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        position = Position(name, mark.line + 1, mark.column + 1) if mark else Position(name, 1, 1)
        return YamlDocument(name, None, issues=[SourceIssue(position, "", f"invalid YAML: {exc.problem}")])
    document = YamlDocument(name, None)
    document.data = _build(node, (), document, env) if node is not None else {}
    return document


def _position(document: YamlDocument, node: yaml.Node) -> Position:
    return Position(document.file, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(node: yaml.Node, path: Path_, document: YamlDocument, env: Mapping[str, str]) -> Any:
    document.value_positions[path] = _position(document, node)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node))
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
    value = _scalar(node)
    if isinstance(value, str) and "$" in value:
        return _expand(value, path, _position(document, node), document, env)
    return value


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
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
