"""CLI command groups; each module exposes `register(app)` and sync/cli.py wires them in."""
