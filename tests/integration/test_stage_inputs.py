"""Damaged or mismatched inputs of the TTP step and linkage, as a user meets them (issue 10, items 11-12).

Each case copies real inputs made from the tiny extracts, damages one thing (a truncated or
malformed manifest, a truncated Parquet file, a folder of the wrong kind, token maps of another
project) and runs the command as a user does (in this process, through its console script's
function: ``command_runner.command_in_process``): the documented exit code, a one-paragraph
message that names the file or folder, no traceback, no output folder, and no value from the
data (batch ids, tokens, pseudonyms) in the message.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from command_runner import assert_clean_failure, command_in_process

from extracts.generator.run import GenerationResult
from pseudonymisation.keys import generate_key
from pseudonymisation.supplier import run_supplier_step
from pseudonymisation.ttp import run_ttp_step

SUPPLIERS = ("ehr", "claims")
PROJECT = "p"


@dataclass(frozen=True)
class Inputs:
    extracts: Path
    keys: Path
    suppliers: Path  # <s>/for_ttp, <s>/for_research
    ttp: Path  # <s>/token_map.parquet, made for PROJECT
    other_project: Path  # the same, made for another project
    secrets: tuple[str, ...]  # batch ids, a token and a pseudonym: must never be printed


@pytest.fixture(scope="module")
def inputs(tiny_extracts: GenerationResult, tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    root = tmp_path_factory.mktemp("stage_inputs")
    network = generate_key(root / "keys" / "network.key", "network")
    ttp_key = generate_key(root / "keys" / "ttp.key", "ttp")
    for s in SUPPLIERS:
        run_supplier_step(tiny_extracts.out / s, s, network, root / "suppliers" / s)
    for_ttp = {s: root / "suppliers" / s / "for_ttp" for s in SUPPLIERS}
    run_ttp_step(for_ttp, ttp_key, PROJECT, root / "ttp")
    run_ttp_step(for_ttp, ttp_key, "another", root / "other")
    token_map = pl.read_parquet(root / "ttp" / "ehr" / "token_map.parquet")
    secrets = tuple(json.loads((for_ttp[s] / "manifest.json").read_text())["batch_id"] for s in SUPPLIERS)
    secrets += (str(token_map["token"][0]), str(token_map["p2"][0]))
    return Inputs(tiny_extracts.out, root / "keys", root / "suppliers", root / "ttp", root / "other", secrets)


def _copy(source: Path, to: Path) -> Path:
    shutil.copytree(source, to)
    return to


def _truncate(path: Path, size: int = 40) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _ttp(i: Inputs, w: Path, **folders: Path) -> list[str]:
    given = {s: i.suppliers / s / "for_ttp" for s in SUPPLIERS} | folders
    return [f"project={PROJECT}", f"out={w / 'out'}", f"ttp_key={i.keys / 'ttp.key'}",
            *(f"+inputs.{s}={folder}" for s, folder in given.items())]


def _link(i: Inputs, w: Path, *, project: str = PROJECT, content: dict[str, Path] | None = None,
          maps: dict[str, Path] | None = None) -> list[str]:
    content = {s: i.suppliers / s / "for_research" for s in SUPPLIERS} | (content or {})
    maps = {s: i.ttp / s for s in SUPPLIERS} | (maps or {})
    return [f"out={w / 'out'}", f"project={project}",
            *(f"content.{s}={content[s]}" for s in SUPPLIERS),
            *(f"token_maps.{s}={maps[s]}" for s in SUPPLIERS)]


def _for_ttp_manifest(i: Inputs, w: Path, damage: Callable[[Path], None]) -> tuple[str, list[str]]:
    folder = _copy(i.suppliers / "ehr" / "for_ttp", w / "for_ttp")
    damage(folder / "manifest.json")
    return "pfl-ttp", _ttp(i, w, ehr=folder)


def _drop_key(path: Path, key: str) -> None:
    manifest = json.loads(path.read_text())
    del manifest[key]
    path.write_text(json.dumps(manifest))


def _map_file(i: Inputs, w: Path, damage: Callable[[Path], None], name: str) -> tuple[str, list[str]]:
    folder = _copy(i.ttp / "ehr", w / "map")
    damage(folder / name)
    return "pfl-link", _link(i, w, maps={"ehr": folder})


def _content_file(i: Inputs, w: Path, damage: Callable[[Path], None], name: str) -> tuple[str, list[str]]:
    folder = _copy(i.suppliers / "claims" / "for_research", w / "content")
    damage(folder / name)
    return "pfl-link", _link(i, w, content={"claims": folder})


def _linked(i: Inputs, w: Path) -> Path:
    made = command_in_process("pfl-link", *_link(i, w / "first"), cwd=w / "cwd")
    assert made.returncode == 0, made.stderr[-2000:]
    return w / "first" / "out"


# (case, build(inputs, work folder) -> (command, args), exit code, what the message says)
CASES: list[tuple[str, Callable[[Inputs, Path], tuple[str, list[str]]], int, str]] = [
    ("ttp: truncated for_ttp manifest",
     lambda i, w: _for_ttp_manifest(i, w, _truncate), 6, "manifest.json is not valid JSON"),
    ("ttp: for_ttp manifest not an object",
     lambda i, w: _for_ttp_manifest(i, w, lambda p: p.write_text("[1, 2]")), 6, "manifest.json"),
    ("ttp: for_ttp manifest without the network key id",
     lambda i, w: _for_ttp_manifest(i, w, lambda p: _drop_key(p, "network_key_id")), 6,
     "network_key_id"),
    ("ttp: another supplier's for_ttp folder",
     lambda i, w: ("pfl-ttp", _ttp(i, w, ehr=i.suppliers / "claims" / "for_ttp")), 6,
     "given as inputs.ehr"),
    # A setting given as null is a missing setting, not a file named "None" or an internal error.
    ("supplier: network key null",
     lambda i, w: ("pfl-supplier", ["supplier=ehr", f"extract={i.extracts / 'ehr'}", f"out={w / 'out'}",
                                    "network_key=null"]), 2, "missing setting(s): network_key"),
    ("supplier: tolerance null",
     lambda i, w: ("pfl-supplier", ["supplier=ehr", f"extract={i.extracts / 'ehr'}", f"out={w / 'out'}",
                                    f"network_key={i.keys / 'network.key'}", "max_quarantine_share=null"]),
     2, "missing setting(s): max_quarantine_share"),
    ("ttp: key null", lambda i, w: ("pfl-ttp", [*_ttp(i, w), "ttp_key=null"]), 2,
     "missing setting(s): ttp_key"),
    ("ttp: an input folder null",
     lambda i, w: ("pfl-ttp", [a if not a.startswith("+inputs.ehr=") else "+inputs.ehr=null" for a in _ttp(i, w)]),
     2, "missing setting(s): inputs.ehr"),
    ("link: truncated token-map manifest",
     lambda i, w: _map_file(i, w, _truncate, "manifest.json"), 4, "manifest.json is not valid JSON"),
    ("link: token-map manifest not an object",
     lambda i, w: _map_file(i, w, lambda p: p.write_text("[]"), "manifest.json"), 4,
     "manifest.json is not a JSON object"),
    ("link: token-map manifest without a project",
     lambda i, w: _map_file(i, w, lambda p: _drop_key(p, "project"), "manifest.json"), 8,
     "not a TTP token-map folder"),
    ("link: truncated token map",
     lambda i, w: _map_file(i, w, _truncate, "token_map.parquet"), 4,
     "token_map.parquet: not a readable Parquet file"),
    ("link: truncated content manifest",
     lambda i, w: _content_file(i, w, _truncate, "manifest.json"), 4, "manifest.json is not valid JSON"),
    ("link: truncated content file",
     lambda i, w: _content_file(i, w, lambda p: _truncate(p, 300), "claims.parquet"), 4,
     "claims.parquet: not a readable Parquet file"),
    ("link: content file changed after its manifest",
     lambda i, w: _content_file(
         i, w, lambda p: pl.read_parquet(p).head(3).write_parquet(p), "claims.parquet"), 8,
     "claims.parquet: checksum differs from its manifest"),
    ("link: content file missing",
     lambda i, w: _content_file(i, w, Path.unlink, "insured.parquet"), 3, "insured.parquet"),
    ("link: a for_ttp folder as content",
     lambda i, w: ("pfl-link", _link(i, w, content={"ehr": i.suppliers / "ehr" / "for_ttp"})), 8,
     "for_ttp folder"),
    ("link: a for_research folder as token map",
     lambda i, w: ("pfl-link", _link(i, w, maps={"ehr": i.suppliers / "ehr" / "for_research"})), 8,
     "for_research folder (content), given as token_maps.ehr"),
    ("link: a linked folder as content",
     lambda i, w: ("pfl-link", _link(i, w, content={"claims": _linked(i, w)})), 8,
     "a linked folder (pfl-link's own output), given as content.claims"),
    ("link: token maps of another project",
     lambda i, w: ("pfl-link", _link(i, w, maps={s: i.other_project / s for s in SUPPLIERS})), 8,
     "made for project 'another', not for project 'p'"),
    ("link: token maps of the expected project, another one asked",
     lambda i, w: ("pfl-link", _link(i, w, project="seed-study")), 8,
     "made for project 'p', not for project 'seed-study'"),
]


@pytest.mark.parametrize(("build", "code", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_damaged_or_mismatched_input_gets_its_exit_code_and_a_message_without_values(
    inputs: Inputs, tmp_path: Path, build: Callable[[Inputs, Path], tuple[str, list[str]]], code: int,
    says: str,
) -> None:
    command, args = build(inputs, tmp_path)
    proc = command_in_process(command, *args, cwd=tmp_path / "cwd")
    assert_clean_failure(proc, code, says)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    printed = proc.stdout + proc.stderr
    assert [s for s in inputs.secrets if s in printed] == []
    assert not re.search(r"[0-9a-f]{32}", printed), "no batch id, checksum or pseudonym in messages"


def test_link_with_the_expected_project_runs(inputs: Inputs, tmp_path: Path) -> None:
    proc = command_in_process("pfl-link", *_link(inputs, tmp_path), cwd=tmp_path / "cwd")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["project"] == PROJECT
