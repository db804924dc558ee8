"""The TTP step: stage-1 pseudonyms -> project pseudonyms, per project.

Runs at the trusted third party (``shared/spec/pseudonymisation.md``, step 2). Input: each
supplier's ``for_ttp`` folder (token -> P1). Output, for the research environment::

    <out>/<supplier>/token_map.parquet   token -> P2 (project pseudonym) and link_method: ``bsn``,
                                         or for an EHR record without a usable BSN the fallback
                                         method that linked it (``insurance_number``,
                                         ``probabilistic``; :mod:`pseudonymisation.ttp_fallback`)
    <out>/<supplier>/manifest.json       supplier, batch id, project, P2 scheme, project key id
    <out>/ttp_report.json                counts only: tokens received, distinct P1, collisions, and the
                                         fallback's counts per method and reason, blocking, model
                                         weights and its precision estimated on BSN-linked records

The TTP sees tokens and stage-1 pseudonyms, never a BSN or health content. It checks what it can
detect: every supplier's P1 carries the same network key id (and the expected one, when given),
tokens are unique, and no two distinct P1 map to one P2.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from execution import Executor, LocalExecutor
from extracts.atomic import claim_output, file_sha256, scratch, staging, storage_error
from extracts.errors import ExtractNotFoundError, counted
from extracts.manifests import read_manifest_object
from pseudonymisation.errors import KeyMismatchError, PseudonymisationError
from pseudonymisation.comparison import read_encodings
from pseudonymisation.encodings import LINKAGE_LABEL
from pseudonymisation.keys import Key
from pseudonymisation.matching import FallbackSettings
from pseudonymisation.prf import (
    P1_SCHEME,
    P2_SCHEME,
    TOKEN_SCHEME,
    decode_binary,
    encode_labelled,
    refuse_widths,
    label,
    p2_from_p1,
    project_key,
)
from pseudonymisation.stopping import checkpoint, stop_on
from pseudonymisation.supplier import write_json
from pseudonymisation.ttp_fallback import run_fallback
from pseudonymisation.ttp_register import fallback_plan, read_register
from pseudonymisation.ttp_partitioned import (
    LINK_METHOD,
    global_collisions,
    p2_maps,
    partial_maps,
    partitioned_p2,
    repeated_tokens,
    write_token_map,
)

__all__ = ["LINK_METHOD", "TtpResult", "run_ttp_step"]


# Text fields every for_ttp manifest holds (pseudonymisation/supplier.py writes them).
_MANIFEST_TEXT = ("supplier", "batch_id", "network_key_id")
_KEY_ID = re.compile(r"^[0-9a-f]{8}$")
_SUPPLIER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
"""A supplier's name (``inputs.<name>``, and its for_ttp manifest's ``supplier``) names its token
map's folder and scratch: a plain lower-case name, never a path."""
_LABELS = "__p1_labels"  # the identifier file's distinct labels, read beside its manifest (never written)
_COUNTS = "__counts"  # its rows, null tokens and P1 of another width (counts only; never written)
_SMALL = 10  # counts of records below this are banded in what reaches the research side


@dataclass(frozen=True)
class TtpResult:
    out: Path
    project: str
    project_key_id: str
    report: dict
    seconds: float


def _for_ttp_manifest(path: Path, supplier: str) -> dict:
    """The manifest of a supplier's for_ttp folder, or PseudonymisationError (exit 6) naming it."""
    incomplete = "the for_ttp folder is incomplete or damaged; ask the supplier to deliver it again"
    manifest = read_manifest_object(path, error=PseudonymisationError, expected=incomplete)
    lacking = [k for k in _MANIFEST_TEXT if not isinstance(manifest.get(k), str) or not manifest[k]]
    if not isinstance(manifest.get("sha256"), dict):
        lacking.append("sha256")
    if lacking:
        msg = f"{path}: manifest.json lacks {', '.join(lacking)} (or holds another type); {incomplete}"
        raise PseudonymisationError(msg)
    if not _KEY_ID.match(manifest["network_key_id"]):
        msg = f"{path}: manifest.json: network_key_id is not a key id (8 hexadecimal digits); {incomplete}"
        raise PseudonymisationError(msg)
    if manifest["supplier"] != supplier:
        msg = (f"{path.parent}: the for_ttp folder of another supplier, given as inputs.{supplier}; "
               "give each supplier's folder under its own name")
        raise PseudonymisationError(msg)
    return manifest


def _encodings_path(folder: Path, manifest: dict) -> Path | None:
    """The supplier's fallback encodings (checked), when its for_ttp folder has them (suppliers since FBv1)."""
    checksum = manifest["sha256"].get("encodings.parquet")
    if checksum is None:
        return None
    path = folder / "encodings.parquet"
    if not path.is_file() or file_sha256(path) != checksum:
        msg = f"{path}: missing or its checksum differs from its manifest (file changed or incomplete)"
        raise PseudonymisationError(msg)
    return path


def _read_identifiers(folder: Path, supplier: str) -> tuple[dict, Path]:
    """The supplier's checked manifest, with what streaming passes find in its identifier file (its
    labels, rows, P1 of another width), and the file's path: the file is read by the mapping."""
    manifest_path = folder / "manifest.json"
    ident_path = folder / "identifiers.parquet"
    if not folder.is_dir():
        msg = f"{folder}: no such folder; expected a supplier's for_ttp folder"
        raise ExtractNotFoundError(msg)
    if not manifest_path.is_file() or not ident_path.is_file():
        msg = f"{folder}: not a supplier's for_ttp folder (manifest.json and identifiers.parquet expected)"
        raise PseudonymisationError(msg)
    manifest = _for_ttp_manifest(manifest_path, supplier)
    if manifest["sha256"].get("identifiers.parquet") != file_sha256(ident_path):
        msg = f"{ident_path}: checksum differs from its manifest (file changed or incomplete)"
        raise PseudonymisationError(msg)
    try:
        schema = pl.scan_parquet(ident_path).collect_schema()
        if schema.names() != ["token", "p1", "p1_label"]:
            msg = f"{ident_path}: expected exactly the columns token, p1, p1_label"
            raise PseudonymisationError(msg)
        # Streaming passes, never the person-sized frame: the label (the same on every row), the
        # rows, the tokens' nulls and the P1 that are not 16 bytes (refused where the mapping needs them).
        labels = pl.scan_parquet(ident_path).select(pl.col("p1_label").unique()).collect(engine="streaming")
        p1 = pl.col("p1").cast(pl.Binary)
        counts = pl.scan_parquet(ident_path).select(
            rows=pl.len(), null_tokens=pl.col("token").null_count(),
            bad_p1=(p1.is_null() | (p1.bin.size() != 16)).sum()).collect(engine="streaming").row(0, named=True)
    except (pl.exceptions.PolarsError, OSError) as exc:
        if storage_error(exc) is not None:
            raise
        msg = f"{ident_path}: not a readable Parquet file ({type(exc).__name__})"
        raise PseudonymisationError(msg) from None
    manifest = {**manifest, _LABELS: labels["p1_label"].to_list(), _COUNTS: counts}
    if schema["token"] != pl.Int64 or counts["null_tokens"]:
        msg = (f"{ident_path}: column token must hold 64-bit integer tokens without nulls "
               f"(expected scheme {TOKEN_SCHEME})")
        raise PseudonymisationError(msg)
    return manifest, ident_path


def _load_identifiers(path: Path) -> pl.DataFrame:
    """The whole identifier file (token, p1): the mapping in one partition (K = 1) holds it."""
    try:
        return pl.read_parquet(path, columns=["token", "p1"])
    except (pl.exceptions.PolarsError, OSError) as exc:
        if storage_error(exc) is not None:
            raise
        msg = f"{path}: not a readable Parquet file ({type(exc).__name__})"
        raise PseudonymisationError(msg) from None


def run_ttp_step(
    inputs: dict[str, Path],
    ttp_key: Key,
    project: str,
    out: Path,
    *,
    expected_network_key_id: str | None = None,
    overwrite: bool = False,
    fallback: FallbackSettings | None = None,
    executor: Executor | None = None,
    partitions: int = 1,
) -> TtpResult:
    """Map each supplier's tokens to project pseudonyms (see module doc).

    Args:
        inputs: supplier name -> that supplier's ``for_ttp`` folder.
        ttp_key: the TTP's master key K_ttp.
        project: project id; the project key is HKDF(K_ttp, "project/<id>").
        out: output folder (written under a temporary name, renamed when complete).
        expected_network_key_id: refuse inputs made with another network key.
        fallback: the fallback's settings (threshold, margin); None: the defaults.
        executor: where the partitions run (None: in process, :class:`execution.LocalExecutor`).
        partitions: K; the outputs are byte-identical for every K (:mod:`pseudonymisation.ttp_partitioned`).
    """
    out = Path(out)
    for name in inputs:
        if not isinstance(name, str) or not _SUPPLIER_NAME.match(name):
            msg = (f"inputs: supplier name {ascii(name)} is not a plain name (lower-case letters, digits and _, "
                   "starting with a letter, at most 32)")
            raise PseudonymisationError(msg)
    with claim_output(out, overwrite=overwrite, inputs={f"inputs.{s}": Path(f) for s, f in inputs.items()}):
        return _ttp_step(inputs, ttp_key, project, out, expected_network_key_id=expected_network_key_id,
                         overwrite=overwrite, fallback=fallback or FallbackSettings(),
                         executor=executor or LocalExecutor(), partitions=partitions)


def _ttp_step(inputs: dict[str, Path], ttp_key: Key, project: str, out: Path, *,
              expected_network_key_id: str | None, overwrite: bool, fallback: FallbackSettings,
              executor: Executor, partitions: int) -> TtpResult:
    began = time.perf_counter()
    if not inputs:
        msg = "the TTP step needs at least one supplier's for_ttp folder (inputs)"
        raise PseudonymisationError(msg)
    k_proj = project_key(ttp_key, project)
    read = {supplier: _read_identifiers(Path(folder), supplier) for supplier, folder in inputs.items()}
    key_ids = {supplier: m["network_key_id"] for supplier, (m, _) in read.items()}
    if len(set(key_ids.values())) > 1:
        msg = f"suppliers used different network keys (key ids {key_ids}); their pseudonyms cannot link"
        raise KeyMismatchError(msg)
    if expected_network_key_id and set(key_ids.values()) != {expected_network_key_id}:
        msg = f"inputs were made with network key {sorted(set(key_ids.values()))}, expected {expected_network_key_id}"
        raise KeyMismatchError(msg)

    # The fallback (mostly single-threaded numpy over the Bloom filters) runs beside the BSN tokens'
    # mapping, which needs it only when the token maps are written: on 2 cores at nivel size the
    # TTP step with the fallback took 35 s instead of 13 s when the two ran one after the other.
    # A thread cannot be interrupted: on Ctrl-C the fallback is told to stop and stops at its
    # next block (pseudonymisation/stopping.py) instead of holding the command for the rest of
    # its work; the staging folder is removed meanwhile.
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pfl-fallback") as pool:
        pending = pool.submit(_stoppable, stop, inputs, read, fallback)
        try:
            with staging(out, overwrite=overwrite) as tmp:
                report = _map_tokens(read, k_proj, project, tmp, pending.result, inputs=inputs,
                                     executor=executor, partitions=partitions, out=out)
                write_json(tmp / "ttp_report.json", report)
        except Exception:
            pending.result()  # the fallback's refusal first, as when it ran before the mapping
            raise
        except BaseException:  # Ctrl-C (KeyboardInterrupt), SystemExit: do not wait for the fallback
            stop.set()
            raise
    return TtpResult(out, project, k_proj.id, report, time.perf_counter() - began)


def _stoppable(stop: threading.Event, *args: object) -> tuple[pl.DataFrame | None, dict]:
    with stop_on(stop):
        return _fallback_links(*args)  # type: ignore[arg-type]


def _fallback_links(inputs: dict[str, Path], read: dict[str, tuple[dict, pl.DataFrame]],
                    settings: FallbackSettings) -> tuple[pl.DataFrame | None, dict]:
    """EHR token -> claims token links of the fallback, and its report (``not_run`` says why not)."""
    if not settings.enabled:
        return None, {"not_run": "disabled in the configuration (fallback.enabled=false)"}
    if set(read) != {"ehr", "claims"}:
        return None, {"not_run": "needs the ehr and claims suppliers"}
    encodings = {s: _encodings_path(Path(inputs[s]), read[s][0]) for s in ("ehr", "claims")}
    if any(e is None for e in encodings.values()):
        return None, {"not_run": "a supplier's for_ttp folder has no encodings (made before FBv1)"}
    linkages = {s: read[s][0].get("encoding_linkage", "") for s in ("ehr", "claims")}
    for supplier, value in linkages.items():
        if not isinstance(value, str) or (value and not re.match(LINKAGE_LABEL, value)):
            msg = f"{inputs[supplier]}: manifest.json: encoding_linkage is not a linkage label; ask the supplier again"
            raise PseudonymisationError(msg)
    if len(set(linkages.values())) > 1:
        # Keyed per linkage: encodings of two linkages are incomparable, every pair would disagree.
        shown = {s: v or "(none)" for s, v in linkages.items()}
        msg = (f"the suppliers' fallback encodings are keyed for different linkages ({shown}); "
               "run both supplier steps with the same linkage= label")
        raise KeyMismatchError(msg)
    # The EHR's encodings are the few records it sends for the fallback; the claims register is read
    # in part, by streaming passes (pseudonymisation.ttp_register), as are the identifier files.
    ehr = read_encodings(encodings["ehr"])
    identifiers = {s: Path(inputs[s]) / "identifiers.parquet" for s in ("ehr", "claims")}
    plan, linked = fallback_plan(ehr, identifiers["ehr"], identifiers["claims"])
    if not plan.labelled.height:
        return None, {"not_run": "no record linked by BSN carries encodings: the model cannot be estimated"}
    checkpoint()  # Ctrl-C: stop between the fallback's steps (pseudonymisation/stopping.py)
    found = run_fallback(ehr, read_register(encodings["claims"], ehr, plan, linked), plan, settings)
    claims_p1 = (pl.scan_parquet(identifiers["claims"]).select(pl.col("token").alias("claims_token"), "p1")
                 .filter(pl.col("claims_token").is_in(found.links["claims_token"].implode()))
                 .collect(engine="streaming"))
    links = found.links.join(claims_p1, on="claims_token")
    return links.select("token", "p1", "link_method"), found.report


def _fallback_summary(report: dict) -> dict:
    """What the research side may know of the fallback: counts per method and reason, the estimate."""
    if "not_run" in report:
        return {"not_run": report["not_run"]}
    keys = ("records", "estimated_on_bsn_linked_records", "settings")
    return {**{k: report[k] for k in keys}, "linked_by_method": _banded(report["linked_by_method"]),
            "unlinked_by_reason": _banded(report["unlinked_by_reason"], complement=True)}


def _banded(counts: dict[str, int], *, complement: bool = False) -> dict[str, int | str]:
    """Counts of 1.._SMALL-1 records as ``"<10"`` (small groups of patients).

    ``complement``: the counts add up to a total the research side knows (the unlinked records
    per reason add up to the records without a usable BSN less those linked, both known from the
    content and the token maps). One banded count would then be exact by subtraction, and so would
    the sum of several under ``_SMALL``: the smallest count of ``_SMALL`` or more is banded too, as
    ``">=10"`` (secondary suppression, disclosure.md; GaussSuppression picks the smallest).
    """
    small = {k for k, v in counts.items() if 0 < v < _SMALL}
    if complement and small and (len(small) == 1 or sum(counts[k] for k in small) < _SMALL):
        shown = sorted((v, k) for k, v in counts.items() if v >= _SMALL)
        secondary = {shown[0][1]} if shown else set()
    else:
        secondary = set()
    return {k: f"<{_SMALL}" if k in small else f">={_SMALL}" if k in secondary else v
            for k, v in counts.items()}


def _check_labels(supplier: str, manifest: dict) -> None:
    """One supplier's identifiers carry its network key's label (whole file, any K)."""
    source = f"{supplier} identifiers"
    labels = manifest[_LABELS]
    expected = label(P1_SCHEME, manifest["network_key_id"])
    if labels and labels != [expected]:
        schemes = sorted({str(x)[:4] for x in labels if x and str(x)[:4] in (P1_SCHEME,)} or {"other"})
        msg = (f"{source}: {len(labels)} pseudonym label(s) differ from {expected} "
               f"(scheme {schemes}); made under another key or scheme")
        raise KeyMismatchError(msg)


def _check_unique_tokens(supplier: str, repeated: int) -> None:
    """One supplier's tokens are unique: over its whole identifier file (K = 1) or its whole token
    map (K > 1: a repeated token may carry two P1 in two partitions; the map holds both)."""
    if repeated:
        msg = (f"{supplier} identifiers: {counted(repeated, 'token')} {'occurs' if repeated == 1 else 'occur'} "
               "more than once")
        raise PseudonymisationError(msg)


def _write_token_map(supplier: str, manifest: dict, bsn_map: tuple[pl.LazyFrame, int], k_proj: Key, project: str,
                     tmp: Path, extra: tuple[pl.DataFrame | None, dict], scratch_folder: Path) -> None:
    """One supplier's token map (BSN links, and the fallback's for the EHR), in token order, and manifest.

    ``bsn_map``: its BSN links (``token, p2``) and their rows."""
    folder = tmp / supplier
    folder.mkdir()
    path = folder / "token_map.parquet"
    links = pl.DataFrame(schema={"token": pl.Int64, "p2": pl.String, "link_method": pl.String})
    if supplier == "ehr" and extra[0] is not None and extra[0].height:
        # A fallback link takes the project pseudonym of the claims person it links to.
        fb = extra[0]
        fb_p2 = encode_labelled(p2_from_p1(k_proj, decode_binary(fb["p1"], source="fallback links")),
                                P2_SCHEME, k_proj.id)
        links = pl.DataFrame({"token": fb["token"], "p2": fb_p2, "link_method": fb["link_method"]}).cast(links.schema)
    rows = write_token_map(bsn_map[0], links, path, rows=bsn_map[1], scratch=scratch_folder / f"{supplier}-map")
    write_json(folder / "manifest.json", {
        "supplier": supplier, "batch_id": manifest["batch_id"], "project": project,
        "p2_scheme": P2_SCHEME, "project_key_id": k_proj.id, "rows": rows,
        "sha256": {"token_map.parquet": file_sha256(path)},
        # The linkage report shows the fallback's self-check (counts and shares only).
        **({"fallback": _fallback_summary(extra[1])} if supplier == "ehr" else {}),
    })


def _map_tokens(read: dict[str, tuple[dict, pl.DataFrame]], k_proj: Key, project: str, tmp: Path,
                fallback: Callable[[], tuple[pl.DataFrame | None, dict]], *, inputs: dict[str, Path],
                executor: Executor, partitions: int, out: Path) -> dict:
    """The token maps; ``fallback`` gives the fallback's links and report (waiting for them)."""
    report: dict = {"project": project, "project_key_id": k_proj.id, "p2_scheme": P2_SCHEME, "suppliers": {},
                    "fallback": None}
    for supplier, (manifest, _) in read.items():
        _check_labels(supplier, manifest)
    if partitions == 1:  # the partitions' function over the whole files, in memory
        frames = {supplier: _load_identifiers(path) for supplier, (_, path) in read.items()}
        for supplier, frame in frames.items():
            _check_unique_tokens(supplier, frame.height - frame["token"].n_unique())
        bsn_maps, distinct_p1, distinct_p2, per_supplier = p2_maps(frames, k_proj)
        del frames
        for supplier, (manifest, _) in read.items():
            report["suppliers"][supplier] = {"tokens_received": bsn_maps[supplier].height,
                                             "distinct_p1": per_supplier[supplier],
                                             "network_key_id": manifest["network_key_id"]}
        _report_collisions(report, distinct_p1, distinct_p1 - distinct_p2)
        extra = fallback()
        report["fallback"] = extra[1]
        with scratch(out) as folder:  # the map's token ranges: owner-only, beside the output
            for supplier, (manifest, _) in read.items():
                bsn = bsn_maps.pop(supplier)
                _write_token_map(supplier, manifest, (bsn.lazy(), bsn.height), k_proj, project, tmp, extra, folder)
        return report
    for supplier, (manifest, _) in read.items():  # every P1 16 bytes, or no partition could hold it
        refuse_widths(manifest[_COUNTS]["bad_p1"], source=f"{supplier} identifiers")
    with scratch(out) as folder:  # person-level partials and the worker's key file: owner-only
        identifiers = {s: path for s, (_, path) in read.items()}
        distinct_p1, per_supplier = partitioned_p2(identifiers, k_proj, folder, executor=executor,
                                                   partitions=partitions)
        for supplier, (manifest, _) in read.items():
            report["suppliers"][supplier] = {"tokens_received": manifest[_COUNTS]["rows"],
                                             "distinct_p1": per_supplier[supplier],
                                             "network_key_id": manifest["network_key_id"]}
        _report_collisions(report, distinct_p1, global_collisions(folder, list(read), distinct_p1, partitions))
        for supplier in read:  # every supplier's tokens checked before a token map is written
            _check_unique_tokens(supplier, repeated_tokens(*partial_maps(folder, supplier, partitions)))
        extra = fallback()
        report["fallback"] = extra[1]
        for supplier, (manifest, _) in read.items():
            _write_token_map(supplier, manifest, partial_maps(folder, supplier, partitions), k_proj, project, tmp,
                             extra, folder)
    return report


def _report_collisions(report: dict, distinct_p1: int, collisions: int) -> None:
    report["distinct_p1"] = distinct_p1
    report["collisions"] = collisions
    if collisions:
        # A PRP cannot collide on distinct inputs; if it happens, something is badly wrong.
        msg = f"{collisions} project-pseudonym collisions: nothing written"
        raise PseudonymisationError(msg)
