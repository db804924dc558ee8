"""The packages are the architecture: imports run one way (shared/style.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each package may import only the packages before it.
ORDER = ["extracts", "pseudonymisation", "linkage", "cohort", "pipeline"]


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", ORDER)
def test_package_imports_only_packages_below_it(package: str) -> None:
    later = set(ORDER[ORDER.index(package) + 1 :])
    assert not _imports(package) & later


def test_nothing_but_pseudonymisation_and_extracts_touches_key_material() -> None:
    for package in ("linkage", "cohort"):
        assert "cryptography" not in _imports(package)
