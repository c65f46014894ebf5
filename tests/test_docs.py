"""The documentation says what the program does: every command and option of the CLI is in the
command line reference (docs/cli.md), and every page is in the MkDocs navigation."""

import argparse
import re
from pathlib import Path

from reader.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def commands(parser: argparse.ArgumentParser, prefix: str = "reader"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from commands(sub, f"{prefix} {name}")


def test_every_command_and_option_is_in_the_cli_reference():
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `(reader[^`]*)`\n(.*?)(?=^## |\Z)", page, re.S | re.M))
    missing = []
    for command, parser in commands(build_parser()):
        if command not in sections:
            missing.append(command)
            continue
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help") and f"`{option}`" not in sections[command]:
                    missing.append(f"{command} {option}")
    assert not missing, f"not in docs/cli.md: {missing}"


def test_every_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert {p for p in pages if p not in nav} == set()
