"""Writing training checkpoints so that an interrupted save never leaves a torn file behind."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


def save_atomically(path: Path, state: dict) -> None:
    """torch.save `state` to `path` through a .partial file renamed over it (the folder is made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


class RunClock:
    """When a run saves its checkpoint: every `checkpoint_every_minutes`, at its last step (`steps`), and
    once `max_minutes` of this run are spent (0: no limit), after which it stops."""

    def __init__(self, config) -> None:
        self.config = config
        self.start = self.last_checkpoint = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def checkpoint_due(self, step: int) -> tuple[bool, bool]:
        """(save now, stop after saving)."""
        stop = bool(self.config.max_minutes) and self.elapsed() > 60 * self.config.max_minutes
        every = time.perf_counter() - self.last_checkpoint > 60 * self.config.checkpoint_every_minutes
        return every or step >= self.config.steps or stop, stop

    def checkpointed(self) -> None:
        self.last_checkpoint = time.perf_counter()


def load_checkpoint(path: Path, build: Callable[[dict], nn.Module], weights: str = "model") -> tuple[nn.Module, dict]:
    """(the module `build(state)` makes, with the checkpoint's `weights` loaded, in eval mode; the whole state)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = build(state)
    model.load_state_dict(state[weights])
    return model.eval(), state
