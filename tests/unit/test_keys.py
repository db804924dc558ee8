"""Keys: owner-only key files, references by path or env var, no key material in any text.

Rules: ``shared/spec/pseudonymisation.md``, "Keys" (readable by the owner only; referenced by path
or environment variable; a key id, never the key, in manifests and messages).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from pseudonymisation.errors import KeyFileError, PseudonymisationError
from pseudonymisation.keys import Key, derive, generate_key, key_id, load_key
from pseudonymisation.prf import project_key

ENV = "PFL_TEST_KEY_REFERENCE"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_no_material(text: str, key: Key) -> None:
    assert key.material.hex() not in text
    assert key.material.hex().upper() not in text
    assert repr(key.material) not in text


# --- generate_key -------------------------------------------------------------------------------


def test_generate_key_writes_an_owner_only_file_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "network.key"
    key = generate_key(path, "network")
    assert _mode(path) == 0o600
    assert len(key.material) == 32
    assert path.read_text() == f"pfl-key/1 role=network\n{key.material.hex()}\n"


def test_generate_key_is_owner_only_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        key = generate_key(tmp_path / "ttp.key", "ttp")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "ttp.key") == 0o600
    assert load_key(tmp_path / "ttp.key", "ttp") == key


def test_generate_key_refuses_to_overwrite_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "network.key"
    generate_key(path, "network")
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="exists") as info:
        generate_key(path, "network")
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_generate_key_refuses_an_unknown_role(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="role"):
        generate_key(tmp_path / "x.key", "research")
    assert not (tmp_path / "x.key").exists()


def test_generate_key_gives_a_different_key_each_time(tmp_path: Path) -> None:
    a = generate_key(tmp_path / "a.key", "network")
    b = generate_key(tmp_path / "b.key", "network")
    assert a.material != b.material


# --- load_key: files ------------------------------------------------------------------------------


def test_load_key_reads_back_the_generated_key(tmp_path: Path) -> None:
    key = generate_key(tmp_path / "network.key", "network")
    loaded = load_key(tmp_path / "network.key", "network")
    assert loaded == key
    assert loaded.role == "network"
    assert load_key(str(tmp_path / "network.key"), "network") == key  # str or Path


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o610, 0o601])
def test_load_key_refuses_a_file_others_can_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "network.key"
    key = generate_key(path, "network")
    path.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        load_key(path, "network")
    message = str(info.value)
    assert str(path) in message
    assert f"{mode:o}" in message
    _assert_no_material(message, key)


def test_load_key_refuses_the_wrong_role(tmp_path: Path) -> None:
    path = tmp_path / "network.key"
    key = generate_key(path, "network")
    with pytest.raises(KeyFileError, match="network key where a ttp key") as info:
        load_key(path, "ttp")
    _assert_no_material(str(info.value), key)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "pfl-key/1 role=network\n",
        "0" * 64 + "\n",
        "pfl-key/1 role=network\n" + "0" * 63 + "\n",
        "pfl-key/1 role=network\n" + "0" * 65 + "\n",
        "pfl-key/1 role=network\n" + "g" * 64 + "\n",
        "pfl-key/2 role=network\n" + "ab" * 32 + "\n",
        "pfl-key/1 role=network\n" + "ab" * 32 + "\nextra line\n",
        "pfl-key/1\n" + "ab" * 32 + "\n",
    ],
    ids=[
        "empty",
        "header-only",
        "hex-only",
        "63-hex",
        "65-hex",
        "not-hex",
        "version-2",
        "three-lines",
        "no-role",
    ],
)
def test_load_key_refuses_a_malformed_file_without_echoing_its_content(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "network.key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a key file") as info:
        load_key(path, "network")
    assert str(path) in str(info.value)
    for line in content.splitlines()[1:]:
        assert line not in str(info.value)


def test_load_key_refuses_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "network.key"
    path.write_bytes(b"\xff\xfe\x00" * 30)
    path.chmod(0o600)
    with pytest.raises(KeyFileError):
        load_key(path, "network")


def test_load_key_reports_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    with pytest.raises(KeyFileError, match="not found") as info:
        load_key(path, "network")
    assert str(path) in str(info.value)


def test_load_key_errors_are_pseudonymisation_errors_with_exit_code_6(tmp_path: Path) -> None:
    with pytest.raises(PseudonymisationError) as info:
        load_key(tmp_path / "absent.key", "network")
    assert info.value.exit_code == 6


# --- load_key: env:NAME ---------------------------------------------------------------------------


def test_load_key_env_reference_holding_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key(tmp_path / "ttp.key", "ttp")
    monkeypatch.setenv(ENV, str(tmp_path / "ttp.key"))
    assert load_key(f"env:{ENV}", "ttp") == key


def test_load_key_env_reference_holding_a_path_still_checks_the_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_key(tmp_path / "ttp.key", "ttp")
    (tmp_path / "ttp.key").chmod(0o640)
    monkeypatch.setenv(ENV, str(tmp_path / "ttp.key"))
    with pytest.raises(KeyFileError, match="640"):
        load_key(f"env:{ENV}", "ttp")


def test_load_key_env_reference_holding_the_key_file_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key(tmp_path / "ttp.key", "ttp")
    monkeypatch.setenv(ENV, (tmp_path / "ttp.key").read_text())
    assert load_key(f"env:{ENV}", "ttp") == key


def test_load_key_env_content_of_the_wrong_role_names_the_variable_not_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key(tmp_path / "network.key", "network")
    monkeypatch.setenv(ENV, (tmp_path / "network.key").read_text())
    with pytest.raises(KeyFileError) as info:
        load_key(f"env:{ENV}", "ttp")
    assert f"env:{ENV}" in str(info.value)
    _assert_no_material(str(info.value), key)


@pytest.mark.parametrize("value", [None, ""])
def test_load_key_env_reference_unset_or_empty(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    with pytest.raises(KeyFileError, match="not set") as info:
        load_key(f"env:{ENV}", "network")
    assert ENV in str(info.value)


# --- Key: no material in text; key ids ------------------------------------------------------------


def test_key_repr_and_str_never_show_the_material(tmp_path: Path) -> None:
    key = generate_key(tmp_path / "network.key", "network")
    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})):
        _assert_no_material(text, key)
    assert key.id in str(key)
    assert "network" in repr(key)


def test_derived_key_repr_never_shows_the_material() -> None:
    sub = derive(Key("ttp", bytes(range(32))), "project/p")
    _assert_no_material(repr(sub) + str(sub), sub)


def test_key_id_is_8_lowercase_hex_digits_and_stable(tmp_path: Path) -> None:
    key = generate_key(tmp_path / "network.key", "network")
    assert re.fullmatch(r"[0-9a-f]{8}", key.id)
    assert key.id == key_id(key.material) == load_key(tmp_path / "network.key", "network").id
    assert key_id(bytes(32)) == key_id(bytes(32))


def test_key_id_is_not_a_piece_of_the_key(tmp_path: Path) -> None:
    key = generate_key(tmp_path / "network.key", "network")
    assert key.id not in key.material.hex()


def test_key_id_differs_between_keys(tmp_path: Path) -> None:
    ids = {generate_key(tmp_path / f"{i}.key", "network").id for i in range(20)}
    assert len(ids) == 20
    assert key_id(bytes(32)) != key_id(bytes(31) + b"\x01")


# --- derive and project keys ----------------------------------------------------------------------


def test_derive_with_different_purposes_gives_different_keys() -> None:
    master = Key("ttp", bytes(range(32)))
    materials = {
        derive(master, p).material for p in ("stage1", "project/a", "project/b", "project/A")
    }
    assert len(materials) == 4
    assert master.material not in materials


def test_derive_with_the_same_purpose_gives_the_same_key() -> None:
    master = Key("ttp", bytes(range(32)))
    assert derive(master, "project/a") == derive(master, "project/a")


def test_derive_from_different_masters_gives_different_keys() -> None:
    assert (
        derive(Key("ttp", bytes(32)), "stage1").material
        != derive(Key("ttp", b"\x01" * 32), "stage1").material
    )


def test_project_key_differs_per_project_and_is_stable() -> None:
    ttp = Key("ttp", bytes(range(32)))
    assert project_key(ttp, "proj-1") == project_key(ttp, "proj-1")
    assert project_key(ttp, "proj-1").material != project_key(ttp, "proj-2").material
    assert project_key(ttp, "proj_1").material != project_key(ttp, "proj-1").material


@pytest.mark.parametrize("project", ["", "a b", "a/b", "../etc", "x;y", "p\n", "p.q", "-", "_-_"])
def test_project_key_rejects_an_empty_or_odd_project_id(project: str) -> None:
    with pytest.raises(PseudonymisationError, match="project id"):
        project_key(Key("ttp", bytes(32)), project)
