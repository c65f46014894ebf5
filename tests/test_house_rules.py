"""The house rules every Python module of the project keeps (COMMON.md, issue 28): modules of at most
500 lines, module docstrings of at most 15 lines, no comment block over 10 lines, and neither the front
end nor the audiobook importing the ONNX runtime (reader_runtime)."""

from __future__ import annotations

import ast
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("reader", "runtime", "benchmarks", "tests")
MAX_MODULE_LINES = 500
MAX_DOCSTRING_LINES = 15
MAX_COMMENT_BLOCK_LINES = 10
RUNTIME_FREE = ("reader/frontend", "reader/audiobook")
RUNTIME_PACKAGE = "reader_runtime"


def modules(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py") if ".venv" not in path.parts)


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_docstring_lines(tree: ast.Module) -> int:
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.end_lineno - first.lineno + 1
    return 0


def comment_blocks(path: Path) -> list[tuple[int, int]]:
    """(first line, length) of every run of consecutive lines that hold only a comment."""
    with path.open("rb") as handle:
        comment_lines = [token.start[0] for token in tokenize.tokenize(handle.readline) if token.type == tokenize.COMMENT and token.line.lstrip().startswith("#")]
    blocks: list[list[int]] = []
    for line in comment_lines:
        if blocks and line == blocks[-1][0] + blocks[-1][1]:
            blocks[-1][1] += 1
        else:
            blocks.append([line, 1])
    return [(start, length) for start, length in blocks]


def runtime_imports(tree: ast.Module) -> list[int]:
    """Lines importing reader_runtime (at module level or inside a function)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == RUNTIME_PACKAGE for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == RUNTIME_PACKAGE:
            lines.append(node.lineno)
    return lines


def test_the_checks_see_the_project():
    paths = modules(*CHECKED)
    assert len(paths) > 100 and ROOT / "tests" / "test_house_rules.py" in paths


def test_comment_blocks_and_runtime_imports_are_found(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""Doc."""\n# one\n# two\nx = 1  # trailing, not a block\n# three\n\ndef f():\n    from reader_runtime.session import load_session\n    import reader_runtime.stream\n    return "# not a comment"\n')
    assert comment_blocks(sample) == [(2, 2), (5, 1)]
    assert runtime_imports(ast.parse(sample.read_text())) == [8, 9]
    assert module_docstring_lines(ast.parse(sample.read_text())) == 1


def test_modules_are_at_most_500_lines():
    long = {name(p): n for p in modules(*CHECKED) if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by responsibility): {long}"


def test_module_docstrings_are_at_most_15_lines():
    long = {name(p): n for p in modules(*CHECKED) if (n := module_docstring_lines(ast.parse(p.read_text(encoding="utf-8")))) > MAX_DOCSTRING_LINES}
    assert not long, f"module docstrings over {MAX_DOCSTRING_LINES} lines (move the evidence to docs/): {long}"


def test_no_comment_block_is_over_10_lines():
    long = {f"{name(p)}:{start}": length for p in modules(*CHECKED) for start, length in comment_blocks(p) if length > MAX_COMMENT_BLOCK_LINES}
    assert not long, f"comment blocks over {MAX_COMMENT_BLOCK_LINES} lines (say what and why in a line or two): {long}"


@pytest.mark.parametrize("folder", RUNTIME_FREE)
def test_front_end_and_audiobook_do_not_import_the_runtime(folder):
    found = {name(p): lines for p in modules(folder) if (lines := runtime_imports(ast.parse(p.read_text(encoding="utf-8"))))}
    assert not found, f"{folder} imports {RUNTIME_PACKAGE} (file writing lives in reader.io): {found}"
