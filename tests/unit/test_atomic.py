"""Outputs are complete or absent (issue 6's robustness, used by every stage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from extracts.atomic import staging
from extracts.errors import EngineError


def test_staging_publishes_the_folder_only_when_the_block_completes(tmp_path: Path) -> None:
    with staging(tmp_path / "out", overwrite=False) as tmp:
        (tmp / "a.txt").write_text("x")
        assert not (tmp_path / "out").exists()
    assert (tmp_path / "out" / "a.txt").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_staging_leaves_nothing_when_the_block_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), staging(tmp_path / "out", overwrite=False) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_staging_keeps_the_old_output_when_a_replacement_fails(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), staging(tmp_path / "out", overwrite=True):
        raise RuntimeError("killed")
    assert (tmp_path / "out" / "old.txt").read_text() == "old"


def test_staging_refuses_an_existing_output_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(EngineError, match="exists"), staging(tmp_path / "out", overwrite=False):
        pass
    with staging(tmp_path / "out", overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]
