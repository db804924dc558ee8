"""The packages are the architecture: imports run one way (shared/style.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each package may import only the packages before it.
ORDER = ["execution", "extracts", "pseudonymisation", "linkage", "cohort", "disclosure", "release", "pipeline"]


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
    for package in ("linkage", "cohort", "disclosure", "release"):
        assert "cryptography" not in _imports(package)


ENGINE = set(ORDER)


def _module_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_auditor_imports_nothing_of_the_engine() -> None:
    # The audit is a separate code path (disclosure.md, "The auditor"): every module of audit/,
    # its command included, runs without the engine's packages.
    assert not {m.split(".")[0] for m in _imports_of("audit")} & ENGINE


def test_the_report_imports_nothing_of_the_engine_only_the_auditor() -> None:
    # The report is for anyone who receives a release; it runs the independent audit first
    # (issue 10, item 4), so it may import audit/, and nothing of the engine.
    imported = {m.split(".")[0] for m in _imports_of("report")}
    assert not imported & ENGINE
    assert "audit" in imported


def test_disclosure_control_and_release_never_import_the_auditor() -> None:
    for package in ("disclosure", "release"):
        for path in (ROOT / package).rglob("*.py"):
            assert not any(m == "audit" or m.startswith("audit.") for m in _module_imports(path)), path


def test_only_the_demo_job_calls_the_auditor_from_the_engine() -> None:
    users = {p.relative_to(ROOT).as_posix() for package in ORDER for p in (ROOT / package).rglob("*.py")
             if any(m == "audit" or m.startswith("audit.") for m in _module_imports(p))}
    assert users <= {"pipeline/demo.py"}


def _imports_of(package: str) -> set[str]:
    return set().union(*(_module_imports(p) for p in (ROOT / package).rglob("*.py")))
