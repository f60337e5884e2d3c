"""Hostile config files: whatever the bytes, loading ends in a located `ConfigError` or a valid config.

A config may come from a careless copy, a wrong file or an attacker who can write it: bytes that are
not UTF-8, tags that ask PyYAML for Python objects, anchors that expand exponentially, nesting that
exhausts the stack. Each must be refused with the file and the place named, quickly, never with a
traceback or a hang.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.config import Config, ConfigError, load_config

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join([*lines, "state_dir: /tmp/x"]) + "\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"state_dir: /tmp/x\nserver:\n  bind: caf\xe9\n", r"espd\.yaml:3:12 not UTF-8 text \(byte 0xe9\)"),
        (
            b'state_dir: !!python/object/apply:os.system ["true"]\n',
            r"espd\.yaml:1:12 YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
        ),
        (b"server: !!python/object:object {}\n", r"espd\.yaml:1:9 YAML tag .* is not allowed"),
        (b"? !!python/name:os.system\n: 1\n", r"espd\.yaml:1:3 YAML tag .* is not allowed"),
        (b'state_dir: !!binary "aGk="\n', r"espd\.yaml:1:12 YAML tag 'tag:yaml.org,2002:binary'"),
        (_alias_bomb().encode(), r"espd\.yaml:\d+:\d+ more than 10000 values .*alias bomb"),
        (b"a: " + b"[" * 50_000 + b"]" * 50_000 + b"\n", r"espd\.yaml:1:1 invalid YAML: nested too deeply"),
        (b"state_dir: /tmp/x\n\x00\n", r"espd\.yaml:\d+:\d+ invalid YAML"),
    ],
    ids=["latin-1", "python-apply", "python-object", "tagged-key", "binary", "alias-bomb", "deep", "nul"],
)
def test_hostile_config_is_a_located_config_error(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "espd.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected):
        load_config(path, environ={})


_YAML_PIECES = st.sampled_from(
    [
        "state_dir: /tmp/x\n",
        "server:\n",
        "  port: 8787\n",
        "  bind: 0.0.0.0\n",
        "connectors:\n",
        "  k:\n",
        "    type: klaviyo\n",
        "    api_key: ${K:-x}\n",
        "    api_key: ${UNSET}\n",
        "&a [1, 2]\n",
        "*a\n",
        "x: &b [*b]\n",
        "!!python/object:os.system\n",
        "!!binary aGk=\n",
        "!!timestamp 2024-99-99\n",
        "!!int abc\n",
        "? [a, b]\n",
        ": 1\n",
        "<<: *a\n",
        "- \n",
        "{",
        "]",
        "'",
        '"\\ud800"\n',
        "\t",
        "  ",
        "%YAML 1.1\n",
        "---\n",
        "...\n",
    ]
)


@FUZZ
@given(
    pieces=st.lists(st.one_of(_YAML_PIECES, st.text(max_size=12)), max_size=12),
    garbage=st.binary(max_size=8),
)
def test_any_file_loads_or_fails_with_a_located_config_error(
    tmp_path: Path, pieces: list[str], garbage: bytes
) -> None:
    path = tmp_path / "espd.yaml"
    path.write_bytes("".join(pieces).encode("utf-8", "surrogatepass") + garbage)
    try:
        config = load_config(path, environ={"K": "pk_test"})
    except ConfigError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.position.file == str(path)
            assert issue.position.line >= 1 and issue.position.column >= 1
            assert issue.message
    else:
        assert isinstance(config, Config)
