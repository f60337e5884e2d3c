"""Logging: JSON lines off a terminal, rich on one, run ids, and no email or secret ever written."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pty
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from sync import logs
from sync.config import load_config

REPO = Path(__file__).resolve().parents[2]


def _run_logging(code: str) -> list[str]:
    """Run `code` after `from sync.logs import *` in a fresh interpreter; return its stderr lines."""
    script = "import logging\nfrom sync.logs import *\n" + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    return [line for line in done.stderr.splitlines() if line.strip()]


def test_json_lines_carry_event_fields_and_run_id_when_stderr_is_not_a_terminal() -> None:
    lines = _run_logging(
        """
        configure_logging("INFO")
        log = logging.getLogger("sync.pipeline")
        log_event(log, "cycle_started")
        with run_context("r-42") as run_id:
            log_event(log, "page_pulled", connector="klaviyo", stream="profiles", n=100)
            log.warning("plain %s line", "formatted", extra={"stage": "pull"})
        log_event(log, "debug_only", level=logging.DEBUG)
        """
    )
    records = [json.loads(line) for line in lines]
    assert [r.get("event") for r in records] == ["cycle_started", "page_pulled", None]
    started, pulled, plain = records
    assert "run_id" not in started
    assert pulled["run_id"] == "r-42" and plain["run_id"] == "r-42"
    assert pulled["connector"] == "klaviyo" and pulled["stream"] == "profiles" and pulled["n"] == 100
    assert pulled["msg"] == "event=page_pulled connector=klaviyo stream=profiles n=100"
    assert pulled["level"] == "info" and pulled["logger"] == "sync.pipeline"
    assert plain["msg"] == "plain formatted line" and plain["stage"] == "pull" and plain["level"] == "warning"
    assert plain["ts"].endswith("+00:00")


def test_no_email_or_registered_secret_reaches_the_output_in_any_place() -> None:
    lines = _run_logging(
        """
        from pydantic import SecretStr
        configure_logging("DEBUG", json_lines=True)
        register_secret(SecretStr("pk_live_0123456789abcdef"))
        register_secret("sk-other-secret")
        log = logging.getLogger("connectors.klaviyo")
        log.info("profile alice@example.com updated with key pk_live_0123456789abcdef")
        log.info("GET %s", "https://a.klaviyo.com/api/profiles?filter=equals(email,%22Bob%40Example.COM%22)")
        log_event(log, "push_rejected", who="carol.d+tag@shop.example.org",
                  detail={"emails": ["dave@ex.io"], "auth": "Bearer sk-other-secret"})
        log.debug("extra", extra={"customer": "erin@mail.example", "token": SecretStr("ignored")})
        try:
            raise ValueError("bad address frank@example.net with sk-other-secret")
        except ValueError:
            log.exception("failed for gina@example.com")
        """
    )
    output = "\n".join(lines)
    for leaked in (
        "alice@",
        "Bob%40",
        "carol.d",
        "dave@",
        "erin@",
        "frank@",
        "gina@",
        "pk_live_0123456789abcdef",
        "sk-other-secret",
    ):
        assert leaked not in output, leaked
    records = [json.loads(line) for line in lines]
    assert records[0]["msg"] == "profile [email] updated with key [secret]"
    assert "equals(email,[email]" in records[1]["msg"]
    assert records[2]["who"] == "[email]"
    assert records[2]["detail"] == {"emails": ["[email]"], "auth": "Bearer [secret]"}
    assert records[3]["customer"] == "[email]"
    assert "ValueError: bad address [email] with [secret]" in records[4]["exc"]


def test_rich_output_on_a_terminal_is_readable_text_with_the_run_id() -> None:
    script = textwrap.dedent(
        """
        import logging
        from sync.logs import configure_logging, log_event, run_context
        configure_logging("INFO")
        with run_context("r-7"):
            log_event(logging.getLogger("espd"), "page_pulled", connector="brevo", email="x@y.org")
        """
    )
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, "COLUMNS": "200", "TERM": "xterm"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    text = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())  # rich's colours
    assert "run=r-7 event=page_pulled connector=brevo email=[email]" in text
    assert "INFO" in text and "x@y.org" not in text
    assert not text.lstrip().startswith("{")


def test_run_id_follows_asyncio_tasks_and_threads_and_is_reset_after_the_block() -> None:
    async def seen_in_task_and_thread() -> tuple[str | None, str | None]:
        task = asyncio.create_task(asyncio.sleep(0, result=logs.current_run_id()))
        return await task, await asyncio.to_thread(logs.current_run_id)

    with logs.run_context() as run_id:
        assert len(run_id) == 12
        assert asyncio.run(seen_in_task_and_thread()) == (run_id, run_id)
    assert logs.current_run_id() is None


def test_reconfiguring_replaces_the_handler_and_a_bad_log_call_is_logged_instead_of_raising() -> None:
    lines = _run_logging(
        """
        configure_logging("INFO", json_lines=True)
        configure_logging("INFO", json_lines=True)
        logging.getLogger("espd.test").info("two %s %s for h@x.io", "one")
        """
    )
    assert [json.loads(line)["msg"] for line in lines] == [
        "two %s %s for [email] (log arguments did not match the format)"
    ]


def test_misuse_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"field name\(s\) \['msg', 'run_id'\] are reserved"):
        logs.log_event(logging.getLogger("x"), "oops", run_id="1", msg="x")
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        logs.configure_logging("LOUD")


def test_redact_masks_plausible_addresses_but_keeps_ordinary_text() -> None:
    logs.register_secret(SecretStr("tok-0f9e8d7c6b5a"))
    logs.register_secret("abc")  # too short to mask without mangling every line
    text = "user josé.müller@exämple.de, url ?email=a_b%40c.io&n=3, key tok-0f9e8d7c6b5a, abc, 10@20"
    assert logs.redact(text) == "user [email], url ?email=[email]&n=3, key [secret], abc, 10@20"
    assert logs.redact_value(("a@b.co", 3, None, 1.5)) == ["[email]", 3, None, 1.5]


def test_every_secret_of_a_loaded_config_can_be_registered_in_one_call(tmp_path: Path) -> None:
    secret_file = tmp_path / "brevo"
    secret_file.write_text("xkeysib-file-secret-77\n")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        textwrap.dedent(
            f"""
            connectors:
              klaviyo:
                type: klaviyo
                api_key: pk_config_secret_0042
              brevo:
                type: brevo
                api_key_file: {secret_file}
            server:
              token: server-token-secret-9
            """
        )
    )
    config = load_config(config_path)
    assert logs.register_secrets_in(config) == 3
    line = "keys pk_config_secret_0042 xkeysib-file-secret-77 server-token-secret-9"
    assert logs.redact(line) == "keys [secret] [secret] [secret]"
