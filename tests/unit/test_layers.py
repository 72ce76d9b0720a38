"""Dependencies go one way: tests -> benchmarks -> local, and the function imports none of them.

Every ``import`` and ``from ... import`` of a module's source, read with ``ast`` (nothing is
imported), those inside functions too. Relative imports are left out: they stay in their package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Directory -> the top-level packages its modules must not import.
FORBIDDEN = {
    "local": {"tests", "benchmarks"},
    "benchmarks": {"tests"},
    "events": {"tests"},
    "lambda_src": {"tests"},
    "lambda_src/forwarder": {"tests", "local", "benchmarks"},
}


def imported_packages(source: str) -> set[str]:
    """The top-level package of every module ``source`` imports by absolute name."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def modules(directory: str) -> list[Path]:
    return sorted(p for p in (ROOT / directory).rglob("*.py") if "__pycache__" not in p.parts)


CASES = [(directory, path) for directory in FORBIDDEN for path in modules(directory)]


def test_every_layer_has_modules() -> None:
    assert all(modules(directory) for directory in FORBIDDEN)


@pytest.mark.parametrize(
    ("directory", "path"), CASES, ids=[str(path.relative_to(ROOT)) for _, path in CASES]
)
def test_no_module_imports_a_layer_above_its_own(directory: str, path: Path) -> None:
    assert not imported_packages(path.read_text()) & FORBIDDEN[directory]


def test_imports_inside_functions_count_and_relative_ones_do_not() -> None:
    source = "def f():\n    from tests.e2e import helpers\n    import benchmarks.cpu\n"
    assert imported_packages(source + "from . import model\n") == {"tests", "benchmarks"}
