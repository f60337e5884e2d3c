"""What every CLI command shares: loading the config with located errors, and the exit codes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from sync.config import Config, ConfigError, load_config

EXIT_CONFIG_ERROR = 2
err_console = Console(stderr=True)


def read_config(path: Path) -> Config:
    """Load a config or exit 2 after printing every problem with its file:line:col."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            err_console.print(f"[red]error[/red] {issue}", highlight=False, soft_wrap=True)
        err_console.print(f"{len(exc.issues)} problem(s) in {path}", highlight=False)
        raise typer.Exit(EXIT_CONFIG_ERROR) from None
