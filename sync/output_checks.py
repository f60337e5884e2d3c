"""Config checks that need the field table: output names, segment rules and vendor field limits.

They run at config load, after the schema is valid, so a misspelt output or a rule that refers to an
unknown field stops `espd validate` with `file:line:col` instead of failing the first cycle. A rule's
error points at the character inside the expression: the rule checker gives the line and column within
the expression, added to where the YAML scalar starts (skipping its opening quote, or for a block
scalar `|` / `>` starting on the line after the indicator at the content's indentation).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from connectors.mailchimp.fields import MAX_MERGE_FIELDS
from engine.rules import RuleError, compile_rule
from sync.fields import available_outputs, rule_field_kinds, rule_pairs
from sync.yaml_source import Path_, Position, SourceIssue, YamlDocument, dotted

if TYPE_CHECKING:
    from sync.config import Config

# Mailchimp audiences come with FNAME, LNAME, ADDRESS, PHONE and BIRTHDAY.
MAILCHIMP_DEFAULT_FIELDS = 5
STAMP_COUNT = 2


def output_issues(config: Config, document: YamlDocument) -> list[SourceIssue]:
    """Every problem with `fields` and `segments` that the schema alone cannot see."""
    issues = _rule_issues(config, document)
    known = {f.output for f in available_outputs(rule_pairs(config))}
    listed: list[tuple[Path_, list[str]]] = []
    if config.fields.outputs is not None:
        listed.append((("fields", "outputs"), config.fields.outputs))
    listed += [(("fields", "destinations", n), names) for n, names in config.fields.destinations.items()]
    for path, names in listed:
        for i, name in enumerate(names):
            if name not in known:
                issues.append(
                    SourceIssue(
                        document.position_of((*path, i)),
                        dotted((*path, i)),
                        f"unknown output {name!r}; docs/fields.md lists them",
                    )
                )
    return issues + _mailchimp_issues(config, document, known)


def _rule_issues(config: Config, document: YamlDocument) -> list[SourceIssue]:
    issues, seen = [], set()
    kinds = rule_field_kinds()
    for i, rule in enumerate(config.segments.rules):
        path: Path_ = ("segments", "rules", i)
        if rule.name in seen:
            issues.append(
                SourceIssue(
                    document.position_of((*path, "name")), dotted((*path, "name")), "duplicate rule name"
                )
            )
        seen.add(rule.name)
        try:
            compile_rule(rule.name, rule.when, kinds)
        except RuleError as exc:
            at = _inside(document, (*path, "when"), exc.line, exc.column)
            issues.append(SourceIssue(at, dotted((*path, "when")), exc.message))
    return issues


def _inside(document: YamlDocument, path: Path_, line: int, column: int) -> Position:
    """The file position of (line, column) inside the expression scalar at `path`."""
    start = document.value_positions.get(path) or document.position_of(path)
    try:
        text = Path(start.file).read_text(encoding="utf-8").splitlines()
        indicator = text[start.line - 1][start.column - 1 :][:1]
    except (OSError, IndexError):
        return start
    if indicator in ("|", ">"):
        content = text[start.line] if start.line < len(text) else ""
        indent = len(content) - len(content.lstrip(" "))
        return Position(start.file, start.line + line, indent + column)
    quote = 1 if indicator in ("'", '"') else 0
    if line == 1:
        return Position(start.file, start.line, start.column + quote + column - 1)
    return Position(start.file, start.line + line - 1, column)


def _mailchimp_issues(config: Config, document: YamlDocument, known: set[str]) -> list[SourceIssue]:
    """An audience holds 30 merge fields: fail at load, not after half the fields were created."""
    room = MAX_MERGE_FIELDS - MAILCHIMP_DEFAULT_FIELDS
    issues = []
    for name, connector in config.connectors.items():
        if connector.type != "mailchimp" or not connector.push:
            continue
        chosen = config.fields.destinations.get(name, config.fields.outputs)
        count = len([o for o in chosen if o in known] if chosen is not None else known) + STAMP_COUNT
        if count > room:
            path: Path_ = (
                ("fields", "destinations", name)
                if name in config.fields.destinations
                else (
                    "connectors",
                    name,
                    "push",
                )
            )
            issues.append(
                SourceIssue(
                    document.position_of(path),
                    dotted(path),
                    f"{count} fields (with espd_scored_at and espd_model_version) for Mailchimp, which "
                    f"leaves room for {room} beside its default merge fields; list fewer outputs in "
                    f"fields.destinations.{name}",
                )
            )
    return issues
