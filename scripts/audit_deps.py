"""Audit espd's installed dependencies for known vulnerabilities; say how many packages were checked.

Run by scripts/audit-deps with the audit tool's own interpreter, given the project's interpreter.
pip-audit is tried against its live sources (PyPI's JSON API, then OSV). A machine that reaches
only a PyPI mirror gets no answer from either, so the audit then falls back to the offline PyUp
database that the `safety-db` package ships, and says how old it is: a stale audit is still a real
one for the advisories it holds, and saying "0 packages audited" beats a silent green.

Exit status: 1 when a known vulnerability is found; 2 when no live source could be reached and
ESPD_AUDIT_STRICT=1; 0 otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

LIVE_SOURCES = ("pypi", "osv")
SOURCE_TIMEOUT_SECONDS = 45


@dataclass
class Audit:
    source: str
    audited: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    note: str = ""


def frozen(python: str) -> list[tuple[str, str]]:
    """(name, version) of every package installed for the project, the project itself excluded."""
    out = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "list",
            "--format",
            "json",
            "--exclude-editable",
            "--disable-pip-version-check",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted((p["name"], p["version"]) for p in json.loads(out))


def pip_audit(source: str, packages: list[tuple[str, str]]) -> Audit:
    """pip-audit against one live source; an unreachable source audits nothing (and says why)."""
    audit = Audit(source)
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(f"{n}=={v}\n" for n, v in packages), encoding="utf-8")
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps", "--disable-pip"]
        command += ["-s", source, "-f", "json", "-o", str(report), "--progress-spinner", "off"]
        command += ["--timeout", "10"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=SOURCE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            audit.note = f"no answer within {SOURCE_TIMEOUT_SECONDS} s"
            return audit
        if not report.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            audit.note = f"unreachable ({last[:160]})"
            return audit
        for dependency in json.loads(report.read_text(encoding="utf-8"))["dependencies"]:
            if "skip_reason" in dependency:
                continue
            audit.audited.append(dependency["name"])
            for vuln in dependency.get("vulns", []):
                fixes = ", ".join(vuln.get("fix_versions", [])) or "none yet"
                audit.findings.append(
                    f"{dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixes})"
                )
    if not audit.audited:
        audit.note = "reachable but knew none of the packages (a mirror without vulnerability data)"
    return audit


def offline_audit(packages: list[tuple[str, str]]) -> Audit:
    """The packages against the PyUp database shipped by `safety-db` (its date is reported)."""
    spec = importlib.util.find_spec("safety_db")  # located, not imported: its __init__ opens a wrong path
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("audit-deps: the safety-db package is missing (scripts/audit-requirements.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / "insecure_full.json"
    database = json.loads(path.read_text(encoding="utf-8"))
    stamp = datetime.fromtimestamp(database["$meta"]["timestamp"], UTC)
    audit = Audit(
        "safety-db", note=f"offline database of {stamp:%Y-%m-%d}: advisories published since are unknown"
    )
    advisories = {canonicalize_name(name): entries for name, entries in database.items() if name != "$meta"}
    for name, version in packages:
        audit.audited.append(name)
        try:
            installed = Version(version)
        except InvalidVersion:
            continue
        for entry in advisories.get(canonicalize_name(name), []):
            if any(_matches(spec, installed) for spec in entry.get("specs", [])):
                cve = f", {entry['cve']}" if entry.get("cve") else ""
                audit.findings.append(f"{name} {version}: {entry['id']}{cve} (affected {entry['v']})")
    return audit


def _matches(spec: str, version: Version) -> bool:
    try:
        return version in SpecifierSet(spec, prereleases=True)
    except InvalidSpecifier:
        return False


def main(project_python: str) -> int:
    packages = frozen(project_python)
    strict = os.environ.get("ESPD_AUDIT_STRICT") == "1"
    live = None
    for source in LIVE_SOURCES:
        audit = pip_audit(source, packages)
        print(f"audit-deps: pip-audit -s {source}: {len(audit.audited)}/{len(packages)} audited {audit.note}")
        if audit.audited:
            live = audit
            break
    chosen = live or offline_audit(packages)
    if live is None:
        print(f"audit-deps: {chosen.source}: {len(chosen.audited)}/{len(packages)} audited; {chosen.note}")
    for finding in chosen.findings:
        print(f"audit-deps: VULNERABLE {finding}")
    print(
        f"audit-deps: {len(chosen.audited)} of {len(packages)} packages audited with {chosen.source}, "
        f"{len(chosen.findings)} known vulnerabilities"
    )
    if chosen.findings:
        return 1
    if live is None:
        print("audit-deps: WARNING no live vulnerability source reachable: only as fresh as the offline data")
        return 2 if strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
