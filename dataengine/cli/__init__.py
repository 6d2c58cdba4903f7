"""The `dataengine` command: a thin layer that builds library objects and hands off.

Each stage has its own module under `dataengine/cli/` that adds commands to `cli`; `COMMAND_MODULES`
lists them. Heavy libraries (torch, transformers, vllm) are imported inside commands, so
`dataengine --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import click

from dataengine.cli._common import cli

# One module per stage; each registers its commands on `cli` when imported.
COMMAND_MODULES = [
    "dataengine.cli.core",
    "dataengine.cli.ingest",
    "dataengine.cli.generate",
    "dataengine.cli.filter",
    "dataengine.cli.dedup",
    "dataengine.cli.mix",
    "dataengine.cli.verify",
    "dataengine.cli.train",
    "dataengine.cli.report",
    "dataengine.cli.pipeline",
]

for _mod in COMMAND_MODULES:
    importlib.import_module(_mod)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="dataengine", standalone_mode=True)
    except click.exceptions.Exit as e:  # pragma: no cover - click handles this in standalone mode
        sys.exit(e.exit_code)


__all__ = ["cli", "main"]
