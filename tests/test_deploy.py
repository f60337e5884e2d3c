"""deploy/: the Dockerfile passes hadolint-style checks and its HEALTHCHECK really probes /healthz; the
systemd unit has the hardening the daemon relies on and passes `systemd-analyze verify`.

No Docker engine runs in CI, so the Dockerfile is checked statically, in the spirit of hadolint's
rules (DL3002 non-root, DL3006/DL3007 tagged base, DL3009 apt lists removed, DL3015 no recommends,
DL3020/DL3021 ADD, DL3025 exec form, DL3042 pip cache).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sync.commands.common import EXIT_CONFIG_ERROR
from sync.config import ServerConfig
from sync.health import HealthServer, HealthState
from sync.lock import EXIT_LOCKED
from sync.metrics import Metrics

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
UNIT = REPO / "deploy" / "espd.service"


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK, or an error naming the line."""
        text = self.args.split(" CMD ", 1)[1] if self.keyword == "HEALTHCHECK" else self.args
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            pytest.fail(f"Dockerfile:{self.line} {self.keyword} is not in exec (JSON array) form")
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value


def _instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    result: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        pending.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            keyword, _, args = " ".join(p for p in pending if p).partition(" ")
            result.append(Instruction(start, keyword.upper(), args.strip()))
            pending = []
    return result


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return _instructions(DOCKERFILE.read_text())


def _final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last_from:]


def _only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def test_instruction_parser_joins_continuations_and_skips_comments() -> None:
    parsed = _instructions("# c\nFROM a:1 AS b\nRUN x \\\n    && y\n\nUSER 1\n")
    assert parsed == [
        Instruction(2, "FROM", "a:1 AS b"),
        Instruction(3, "RUN", "x && y"),
        Instruction(6, "USER", "1"),
    ]


def test_base_images_are_pinned_slim_python_and_never_latest(instructions: list[Instruction]) -> None:
    stages: set[str] = set()
    for ins in (i for i in instructions if i.keyword == "FROM"):
        words = ins.args.split()
        image = words[0]
        if image not in stages:
            name, _, tag = image.partition(":")
            assert tag and tag != "latest", f"Dockerfile:{ins.line} untagged or latest base image {image}"
            assert name == "python" and tag.startswith("3.11-slim"), f"Dockerfile:{ins.line} {image}"
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])


def test_the_image_runs_as_a_non_root_user(instructions: list[Instruction]) -> None:
    final = _final_stage(instructions)
    users = [i for i in final if i.keyword == "USER"]
    assert users, "the final stage has no USER: the daemon would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    assert final.index(users[-1]) > max(i for i, ins in enumerate(final) if ins.keyword == "RUN")


def test_apt_and_pip_leave_no_caches_or_extras(instructions: list[Instruction]) -> None:
    runs = [i for i in instructions if i.keyword == "RUN"]
    installs = [r for r in runs if "apt-get install" in r.args]
    assert installs, "tini comes from Debian: expected an apt-get install"
    for run in installs:
        assert "apt-get update" in run.args, f"Dockerfile:{run.line} install without update in the same RUN"
        assert "--no-install-recommends" in run.args, f"Dockerfile:{run.line}"
        assert re.search(r"apt-get install (-\S+ )*-y\b", run.args), f"Dockerfile:{run.line} needs -y"
        assert "rm -rf /var/lib/apt/lists/*" in run.args, f"Dockerfile:{run.line} leaves apt lists behind"
        assert "tini" in run.args.split()
    for run in (r for r in runs if re.search(r"pip (install|wheel)", r.args)):
        assert "--no-cache-dir" in run.args, f"Dockerfile:{run.line} pip without --no-cache-dir"
    for run in runs:
        assert "|" not in run.args.replace("||", ""), f"Dockerfile:{run.line} pipe without pipefail"


def test_nothing_is_added_from_urls_and_every_copied_path_is_in_the_context(
    instructions: list[Instruction],
) -> None:
    assert not [i for i in instructions if i.keyword == "ADD"], "use COPY (hadolint DL3020/DL3021)"
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for copy in (i for i in instructions if i.keyword == "COPY"):
        words = [w for w in copy.args.split() if not w.startswith("--")]
        for source in words[:-1]:
            assert not re.match(r"^[a-z]+://", source)
            assert (REPO / source).exists(), f"Dockerfile:{copy.line} copies missing {source}"
            assert source.rstrip("/") in allowed, (
                f"Dockerfile:{copy.line} {source} is excluded from the context"
            )


def test_tini_is_pid_1_and_the_default_command_runs_the_daemon(instructions: list[Instruction]) -> None:
    final = _final_stage(instructions)
    assert _only(final, "ENTRYPOINT").exec_form() == ["/usr/bin/tini", "--"]
    assert _only(final, "CMD").exec_form() == ["espd", "run", "/etc/espd/config.yaml"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["espd"] == "sync.cli:main"


def test_state_lives_in_a_volume_that_the_config_reaches(instructions: list[Instruction]) -> None:
    final = _final_stage(instructions)
    volume = json.loads(_only(final, "VOLUME").args)
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    state_dir = re.search(r"ESPD_STATE_DIR=(\S+)", env)
    assert state_dir and volume == [state_dir.group(1)]
    example = (REPO / "config.example.yaml").read_text()
    assert re.search(r"^state_dir: \$\{ESPD_STATE_DIR", example, re.MULTILINE)


def _healthcheck(instructions: list[Instruction]) -> tuple[list[str], str]:
    final = _final_stage(instructions)
    check = _only(final, "HEALTHCHECK")
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    url = re.search(r"ESPD_HEALTHCHECK_URL=(\S+)", env)
    assert url, "the HEALTHCHECK URL is set with ENV so it can be overridden"
    return check.exec_form(), url.group(1)


def test_the_healthcheck_probes_healthz_on_the_default_server_port(instructions: list[Instruction]) -> None:
    command, url = _healthcheck(instructions)
    assert command[0] == "python", "python is in the image; curl is not"
    assert url == f"http://127.0.0.1:{ServerConfig().port}/healthz"


@pytest.fixture
def health_server(tmp_path: Path) -> Iterator[HealthServer]:
    state = HealthState(stale_after=3600)
    with HealthServer(state=state, metrics=Metrics(), store_ping=lambda: None, port=0) as server:
        yield server


def test_the_healthcheck_command_passes_on_a_live_daemon_and_fails_on_a_dead_one(
    instructions: list[Instruction], health_server: HealthServer
) -> None:
    command, _ = _healthcheck(instructions)
    probe = [sys.executable, *command[1:]]
    env = {**os.environ, "ESPD_HEALTHCHECK_URL": f"{health_server.url}/healthz"}
    assert subprocess.run(probe, env=env, capture_output=True, timeout=60).returncode == 0
    health_server.state.stopping()
    assert subprocess.run(probe, env=env, capture_output=True, timeout=60).returncode != 0


def _unit() -> dict[str, list[str]]:
    """Every `Key=value` of the unit (all sections), values in order of appearance."""
    values: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_the_unit_notifies_is_watched_and_does_not_restart_what_a_restart_cannot_fix() -> None:
    unit = _unit()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["ExecStart"] == ["/usr/bin/env espd run /etc/espd/config.yaml"]
    assert unit["Restart"] == ["on-failure"]
    assert set(unit["RestartPreventExitStatus"][0].split()) == {str(EXIT_LOCKED), str(EXIT_CONFIG_ERROR)}
    assert unit["WatchdogSec"] and unit["WatchdogSec"][0] not in ("0", "infinity")
    stop = re.fullmatch(r"(\d+)s", unit["TimeoutStopSec"][0])
    assert stop and int(stop.group(1)) > 30, "espd promises to exit within 30 s of SIGTERM"


def test_the_unit_is_sandboxed_and_reads_secrets_from_credentials() -> None:
    unit = _unit()
    expected = {
        "DynamicUser": "yes",
        "StateDirectory": "espd",
        "StateDirectoryMode": "0700",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "UMask": "0077",
        "CapabilityBoundingSet": "",
    }
    assert {key: unit.get(key, ["<missing>"])[-1] for key in expected} == expected
    assert set(unit["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    credential = unit["LoadCredential"][0]
    assert re.fullmatch(r"espd:/etc/espd/credentials", credential)
    assert unit["Environment"] == ["ESPD_STATE_DIR=%S/espd"]


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def test_systemd_analyze_verify_accepts_the_unit_and_would_catch_a_typo(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE, (
        "systemd-analyze is missing: scripts/test installs it (scripts/ensure-systemd-analyze)"
    )

    def verify(unit: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SYSTEMD_ANALYZE), "verify", str(unit)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )

    good = verify(UNIT)
    assert good.returncode == 0 and good.stdout + good.stderr == "", good.stderr
    broken = tmp_path / "espd.service"
    broken.write_text(UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=strictly"))
    assert "Failed to parse protect system value" in verify(broken).stderr
