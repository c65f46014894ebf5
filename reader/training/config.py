"""The training configs: TOML files read into (nested) dataclasses, unknown settings refused."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import TypeVar

Config = TypeVar("Config")


def config_from_dict(cls: type[Config], values: dict) -> Config:
    """`cls` built from `values`; a field whose type is a dataclass (a TOML table) is built the same way,
    from {} when absent. A key `cls` does not have raises ValueError naming it."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings: {sorted(unknown)}")
    types = typing.get_type_hints(cls)
    built = {}
    for name in fields:
        if dataclasses.is_dataclass(types[name]):
            built[name] = config_from_dict(types[name], values.get(name, {}))
        elif name in values:
            built[name] = values[name]
    return cls(**built)


def load_config(path: str | Path, cls: type[Config]) -> Config:
    """The TOML file at `path` as a `cls` (see config_from_dict)."""
    with open(path, "rb") as handle:
        return config_from_dict(cls, tomllib.load(handle))
