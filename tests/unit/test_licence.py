"""The licence pyproject.toml declares (``license = "EUPL-1.2"``) ships as its text (PEP 639)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_declared_eupl_licence_ships_as_its_text_in_license_files() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "EUPL-1.2"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("EUROPEAN UNION PUBLIC LICENCE v. 1.2\n")
    # The whole text: its 15 articles and the appendix of compatible licences.
    assert "15.Applicable Law" in text and "'Compatible Licences' according to Article 5 EUPL are" in text.replace(
        "‘", "'").replace("’", "'")
