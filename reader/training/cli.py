"""The command lines shared by the training entry points."""

from __future__ import annotations

import argparse
from typing import Callable


def run_training(description: str, tables: str, load_config: Callable, train: Callable, argv: list[str] | None) -> None:
    """Parse `--config [--run-dir] [--max-steps]`, load the TOML config and train (resuming if a checkpoint exists)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help=f"TOML file with {tables} tables")
    parser.add_argument("--run-dir", help="override [train] run_dir (checkpoint and log folder)")
    parser.add_argument("--max-steps", type=int, help="stop after this many more steps (the config's total still caps)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.run_dir:
        config.train.run_dir = args.run_dir
    train(config, args.max_steps)


def stage_parser(description: str, default_config: str, ship_help: str) -> argparse.ArgumentParser:
    """The command line of a run that trains, then exports and calibrates (aligner fine-tune, phone
    recogniser): `--config`, `--export-only`, `--no-export`, `--ship`; the caller adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=default_config)
    parser.add_argument("--export-only", action="store_true", help="export and calibrate the run's checkpoint without training")
    parser.add_argument("--no-export", action="store_true", help="train only")
    parser.add_argument("--ship", action="store_true", help=ship_help)
    return parser


def log_line(message: str) -> None:
    """A run's progress line, flushed at once (runs are followed through a pipe or a log file)."""
    print(message, flush=True)


def run_stages(args: argparse.Namespace, train: Callable[[], object], export: Callable[[], object]) -> None:
    """A stage_parser command's stages: train unless --export-only, then export unless --no-export."""
    if not args.export_only:
        train()
    if not args.no_export:
        export()
