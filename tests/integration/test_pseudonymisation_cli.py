"""The pseudonymisation commands as a steward runs them: exit codes, messages, no key material."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from command_runner import command_in_process

from extracts.generator.run import GenerationResult


def _run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The command in this process, as its installed script runs it (tests/integration/test_commands.py
    checks that they say the same)."""
    return command_in_process(args[0], *args[1:], cwd=cwd, env=env)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    for role in ("network", "ttp"):
        assert _run("pfl-keygen", "--role", role, "--out", str(folder / f"{role}.key"), cwd=folder).returncode == 0
    _run("pfl-keygen", "--role", "network", "--out", str(folder / "other.key"), cwd=folder)
    return folder


def test_keygen_refuses_to_overwrite_a_key(keys: Path) -> None:
    proc = _run("pfl-keygen", "--role", "ttp", "--out", str(keys / "ttp.key"), cwd=keys)
    assert proc.returncode == 6
    assert "exists" in proc.stderr


def test_supplier_and_ttp_commands_run_end_to_end(tiny_extracts: GenerationResult, keys: Path, tmp_path: Path) -> None:
    for supplier in ("ehr", "claims"):
        proc = _run("pfl-supplier", f"supplier={supplier}", f"extract={tiny_extracts.out / supplier}",
                    f"out={tmp_path / supplier}", f"network_key={keys / 'network.key'}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-1500:]
    proc = _run("pfl-ttp", "project=p1", f"out={tmp_path / 'ttp'}", "ttp_key=env:TEST_TTP_KEY",
                f"+inputs.ehr={tmp_path / 'ehr' / 'for_ttp'}", f"+inputs.claims={tmp_path / 'claims' / 'for_ttp'}",
                cwd=tmp_path, env={"TEST_TTP_KEY": str(keys / "ttp.key")})
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert "collisions: 0" in proc.stderr + proc.stdout
    material = {(keys / f).read_text().splitlines()[1] for f in ("network.key", "ttp.key")}
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".json"}:
            text = path.read_text()
            assert not any(m in text for m in material), f"key material in {path.name}"


def test_supplier_refuses_a_key_file_others_can_read(tiny_extracts: GenerationResult, keys: Path, tmp_path: Path) -> None:
    open_key = tmp_path / "open.key"
    open_key.write_text((keys / "network.key").read_text())
    open_key.chmod(0o644)
    proc = _run("pfl-supplier", "supplier=ehr", f"extract={tiny_extracts.out / 'ehr'}", f"out={tmp_path / 'o'}",
                f"network_key={open_key}", cwd=tmp_path)
    assert proc.returncode == 6
    assert "readable by others" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_ttp_refuses_suppliers_with_different_network_keys(tiny_extracts: GenerationResult, keys: Path, tmp_path: Path) -> None:
    for supplier, key in (("ehr", "network.key"), ("claims", "other.key")):
        assert _run("pfl-supplier", f"supplier={supplier}", f"extract={tiny_extracts.out / supplier}",
                    f"out={tmp_path / supplier}", f"network_key={keys / key}", cwd=tmp_path).returncode == 0
    proc = _run("pfl-ttp", "project=p1", f"out={tmp_path / 'ttp'}", f"ttp_key={keys / 'ttp.key'}",
                f"+inputs.ehr={tmp_path / 'ehr' / 'for_ttp'}", f"+inputs.claims={tmp_path / 'claims' / 'for_ttp'}",
                cwd=tmp_path)
    assert proc.returncode == 7
    assert "different network keys" in proc.stderr
    assert not (tmp_path / "ttp").exists()


def test_supplier_with_missing_setting_names_it(tmp_path: Path) -> None:
    proc = _run("pfl-supplier", "supplier=ehr", cwd=tmp_path)
    assert proc.returncode == 2
    assert "extract" in proc.stderr and "out" in proc.stderr


def test_wrong_role_key_is_refused(tiny_extracts: GenerationResult, keys: Path, tmp_path: Path) -> None:
    proc = _run("pfl-supplier", "supplier=ehr", f"extract={tiny_extracts.out / 'ehr'}", f"out={tmp_path / 'o'}",
                f"network_key={keys / 'ttp.key'}", cwd=tmp_path)
    assert proc.returncode == 6
    assert "a ttp key where a network key is needed" in proc.stderr


@pytest.mark.parametrize(("command", "value"), [("pfl-ttp", "1e3"), ("pfl-ttp", "1_000"), ("pfl-link", "2023"),
                                                ("pfl-link", "true")])
def test_a_project_id_of_digits_is_refused_before_anything_is_read(command: str, value: str, keys: Path,
                                                                   tmp_path: Path) -> None:
    # Hydra reads project=1e3 as 1000.0 and project=1_000 as 1000: the TTP would map pseudonyms
    # for a project named "1000.0" or "1000" that no one asked for.
    from command_runner import assert_clean_failure

    args = {"pfl-ttp": [f"ttp_key={keys / 'ttp.key'}", f"+inputs.ehr={tmp_path / 'e'}"],
            "pfl-link": [f"content.ehr={tmp_path / 'e'}", f"content.claims={tmp_path / 'c'}",
                         f"token_maps.ehr={tmp_path / 't'}", f"token_maps.claims={tmp_path / 'u'}"]}[command]
    proc = _run(command, f"project={value}", f"out={tmp_path / 'out'}", *args, cwd=tmp_path)
    assert_clean_failure(proc, 2, "project: expected text")
    assert not (tmp_path / "out").exists()
    quoted = _run(command, f"project='{value}'", f"out={tmp_path / 'out'}", *args, cwd=tmp_path)
    assert "project: expected text" not in quoted.stderr


def test_supplier_takes_a_linkage_label_and_refuses_a_malformed_one(
    tiny_extracts: GenerationResult, keys: Path, tmp_path: Path
) -> None:
    common = ("supplier=ehr", f"extract={tiny_extracts.out / 'ehr'}", f"network_key={keys / 'network.key'}")
    proc = _run("pfl-supplier", *common, f"out={tmp_path / 'bad'}", "linkage='2026 q4/..'", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert "linkage: expected a label" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "bad").exists()
    proc = _run("pfl-supplier", *common, f"out={tmp_path / 'ok'}", "linkage=2026-q4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert '"encoding_linkage": "2026-q4"' in (tmp_path / "ok" / "for_ttp" / "manifest.json").read_text()
