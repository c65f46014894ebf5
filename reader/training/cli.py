"""The command line shared by the training entry points (acoustic model, vocoder)."""

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
