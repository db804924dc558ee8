"""Reading a study folder (the pre-disclosure tables of ``pfl-study``) and checking its contract.

Every table is checked before anything is protected: the columns and their types, no missing
counts, no negative counts, n <= N, the attrition chain, the changes against the care use they
come from. All problems are collected and reported at once; messages name the file, column, rule
and a count, never a value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cohort.config import STRATA
from cohort.population import RULES
from release.errors import StudyContractError, StudyFormatError, StudyNotFoundError
from extracts.atomic import file_sha256
from extracts.errors import counted

__all__ = ["COHORT_TABLES", "OPTIONAL", "TABLES", "TOTAL", "StudyFolder", "read_study"]

TOTAL = "Total"  # the total level of a stratum; no real level may be called so
_I, _S, _F = "int", "str", "float"
# Columns of each study table (cohort/study.py), strata inserted where ``*`` stands.
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "attrition": (("year", _I), ("condition", _S), ("step", _S), ("before", _I), ("excluded", _I), ("after", _I)),
    "prevalence": (("year", _I), ("condition", _S), ("*", _S), ("numerator", _I), ("denominator", _I)),
    "care_use": (("year", _I), ("condition", _S), ("discipline", _S), ("*", _S), ("n", _I), ("N", _I)),
    "care_use_change": (("condition", _S), ("discipline", _S), ("*", _S), ("year_from", _I), ("year_to", _I),
                        ("share_from", _F), ("share_to", _F), ("change_pp", _F)),
    "referrals": (("year", _I), ("condition", _S), ("n", _I), ("N", _I)),
    "top": (("year", _I), ("discipline", _S), ("rank", _I), ("group", _S), ("contacts", _I), ("share", _F),
            ("persons", _I), ("total_contacts", _I)),
    "acsc": (("year", _I), ("admissions", _I), ("persons", _I)),
}
# Tables a study has only when it asks for them (cohort/config.py): read when their file exists.
OPTIONAL: dict[str, tuple[tuple[str, str], ...]] = {
    "costs": (("year", _I), ("condition", _S), ("sector", _S), ("*", _S), ("persons", _I), ("total_cents", _I),
              ("mean", _F), ("largest_cents", _I), ("second_cents", _I)),
    "contact_bands": (("year", _I), ("condition", _S), ("discipline", _S), ("band", _S), ("persons", _I), ("N", _I)),
    # persons of the study population the TTP linked without their BSN (issue 13): beside the chain
    "fallback_links": (("year", _I), ("persons", _I)),
}
_NULLABLE = {("costs", "mean")}  # the mean over nobody
# The cohort tables of incidence and index-date studies (docs/study-schema.md): as prevalence.
COHORT_COLUMNS = {name: TABLES["prevalence"] for name in ("incidence", "index_cohort")}
# The cohort table of each cohort type (the manifest's cohort.type; prevalence when absent).
COHORT_TABLES = {"prevalence": "prevalence", "incidence": "incidence", "index": "index_cohort"}
# The tables a study folder holds, per cohort type: those of the seed design for prevalence; the
# attrition and the cohort table, with the tables of the outcomes the study counts, otherwise.
_REQUIRED = {"prevalence": ("attrition", "prevalence", "care_use", "care_use_change", "referrals", "top", "acsc"),
             "incidence": ("attrition", "incidence"), "index": ("attrition", "index_cohort")}
_OPTIONAL = ("care_use", "care_use_change", "referrals", "top", "acsc")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{1,64}")
_STRATIFIED = ("prevalence", "incidence", "index_cohort", "care_use", "care_use_change", "costs")
_KINDS = {_I: pl.Int64, _S: pl.String, _F: pl.Float64}


@dataclass(frozen=True)
class StudyFolder:
    """A study folder's tables, checked.

    Attributes:
        path: the folder.
        manifest: its ``manifest.json``.
        tables: each table with the types above (counts ``Int64``).
        strata: the study's strata columns, in the order of ``cohort.config.STRATA``.
        steps: the attrition chain's steps after ``base`` (the manifest's ``cohort.chain``;
            X1-X7 for a study of schema 1).
        cohort_table: the table of the cohort's counts (``prevalence``, ``incidence``,
            ``index_cohort``): numerator and denominator per condition.
        fingerprints: SHA-256 of the manifest (``manifest.json``) and of each table file: the
            steward's provenance of a release (ledger record), never published — a hash of a
            table with hidden cells confirms guesses of them (issue 11.1).
    """

    path: Path
    manifest: dict
    tables: dict[str, pl.DataFrame]
    strata: tuple[str, ...]
    fingerprints: dict[str, str]
    steps: tuple[str, ...] = RULES
    cohort_table: str = "prevalence"


def _columns(table: str, strata: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for name, kind in {**TABLES, **OPTIONAL, **COHORT_COLUMNS}[table]:
        out += [(s, _S) for s in strata] if name == "*" else [(name, kind)]
    return out


def _read(folder: Path, table: str, strata: tuple[str, ...], problems: list[str]) -> pl.DataFrame | None:
    path = folder / f"{table}.parquet"
    if not path.is_file():
        msg = f"{folder}: not a complete study folder ({path.name} is missing); run pfl-study"
        raise StudyNotFoundError(msg)
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, pl.exceptions.PolarsError):
            raise
        msg = f"{path}: not a readable Parquet file"
        raise StudyFormatError(msg) from None
    expected = _columns(table, strata)
    missing = [name for name, _ in expected if name not in frame.columns]
    extra = [c for c in frame.columns if c not in dict(expected)]
    if missing or extra:
        msg = f"{path.name}: expected columns {[n for n, _ in expected]}"
        if missing:
            msg += f"; missing {missing}"
        if extra:
            msg += f"; unexpected {extra}"
        raise StudyFormatError(msg)
    casts = []
    for name, kind in expected:
        dtype = frame.schema[name]
        ok = (kind == _I and dtype.is_integer()) or (kind == _F and dtype.is_numeric()) or (
            kind == _S and dtype in (pl.String, pl.Categorical, pl.Enum))
        if frame.height and dtype == pl.Null:
            ok = False
        if not ok and not (frame.height == 0 and dtype == pl.Null):
            problems.append(f"{path.name}, column '{name}': expected {kind}, found {dtype}")
            continue
        casts.append(pl.col(name).cast(_KINDS[kind]))
    if len(casts) != len(expected):
        return None
    frame = frame.select(casts)
    nulls = {c: n for c, n in frame.null_count().row(0, named=True).items() if n}
    for column, count in nulls.items():
        if (table, column) in _NULLABLE:
            continue
        problems.append(f"{path.name}, column '{column}': {counted(count, 'row')} missing (null)")
    for name, kind in expected:
        if kind == _I and name not in ("year", "year_from", "year_to", "rank"):
            negative = int((frame[name] < 0).sum())
            if negative:
                problems.append(
                    f"{path.name}, column '{name}': {counted(negative, 'row')} with a negative count")
        if kind == _S:  # the total label of every coordinate, never a level
            total = int((frame[name] == TOTAL).sum())
            if total:
                verb = "uses" if total == 1 else "use"
                problems.append(f"{path.name}, column '{name}': {counted(total, 'row')} {verb} the "
                                f"reserved level '{TOTAL}'")
    return frame


def _check_rules(tables: dict[str, pl.DataFrame], strata: tuple[str, ...], problems: list[str],
                 cohort_table: str = "prevalence") -> None:
    def count(frame: pl.DataFrame, expr: pl.Expr) -> int:
        return int(frame.select(expr.fill_null(False).sum()).item())

    for table, (n, big_n) in ((cohort_table, ("numerator", "denominator")), ("care_use", ("n", "N")),
                              ("referrals", ("n", "N")), ("top", ("contacts", "total_contacts")),
                              ("top", ("persons", "contacts")), ("acsc", ("persons", "admissions"))):
        if table not in tables:
            continue
        bad = count(tables[table], pl.col(n) > pl.col(big_n))
        if bad:
            problems.append(f"{table}.parquet: '{n}' exceeds '{big_n}' in {counted(bad, 'row')}")
    attrition = tables["attrition"]
    bad = count(attrition, pl.col("before") != pl.col("excluded") + pl.col("after"))
    if bad:
        problems.append(f"attrition.parquet: 'before' is not 'excluded' + 'after' in {counted(bad, 'row')}")
    keys = {"attrition": ["year", "condition", "step"], cohort_table: ["year", "condition", *strata],
            "care_use": ["year", "condition", "discipline", *strata], "referrals": ["year", "condition"],
            "top": ["year", "discipline", "rank"], "acsc": ["year"], "fallback_links": ["year"],
            "care_use_change": ["condition", "discipline", *strata, "year_from", "year_to"]}
    for table, columns in keys.items():
        if table not in tables:
            continue
        frame = tables[table]
        duplicates = frame.height - frame.select(columns).unique().height
        if duplicates:
            verb = "repeats" if duplicates == 1 else "repeat"
            problems.append(f"{table}.parquet: {counted(duplicates, 'row')} {verb} the key {columns}")
    if "costs" in tables:
        _check_costs(tables["costs"], strata, problems)
    if "fallback_links" in tables:
        # A part of the population of its year: the cohort table's denominator, summed over strata.
        population = tables[cohort_table].group_by("year", "condition").agg(pl.col("denominator").sum()).group_by(
            "year").agg(pl.col("denominator").max())
        joined = tables["fallback_links"].join(population, on="year", how="left")
        bad = count(joined, pl.col("denominator").is_null() | (pl.col("persons") > pl.col("denominator")))
        if bad:
            problems.append(f"fallback_links.parquet: 'persons' exceeds the population of its year in "
                            f"{counted(bad, 'row')}")
    if "contact_bands" in tables:
        sums = tables["contact_bands"].group_by("year", "condition", "discipline").agg(
            (pl.col("persons").sum() != pl.col("N").first()) | (pl.col("N").n_unique() != 1))
        bad = int(sums.select(pl.col("persons").sum()).item() or 0)
        if bad:
            problems.append(f"contact_bands.parquet: the bands of {counted(bad, 'discipline')} do not add up to N")
    if "top" not in tables:
        return
    top = tables["top"]
    groups = top.height - top.select("year", "discipline", "group").unique().height
    if groups:
        verb = "repeats" if groups == 1 else "repeat"
        problems.append(f"top.parquet: {counted(groups, 'row')} {verb} a group within a year and "
                        "discipline")
    per_list = top.group_by("year", "discipline").agg(pl.col("total_contacts").n_unique().alias("k"),
                                                      pl.col("contacts").sum().alias("listed"),
                                                      pl.col("total_contacts").first().alias("total"))
    bad = count(per_list, (pl.col("k") > 1) | (pl.col("listed") > pl.col("total")))
    if bad:
        problems.append(f"top.parquet: 'total_contacts' differs within, or is below the listed contacts of, "
                        f"{bad} lists (year, discipline)")


def _check_costs(costs: pl.DataFrame, strata: tuple[str, ...], problems: list[str]) -> None:
    """The cost table's statistics agree with each other (cohort/costs.py)."""
    rules = {
        "'largest_cents' is below 'second_cents'": pl.col("largest_cents") < pl.col("second_cents"),
        "'largest_cents' + 'second_cents' exceeds 'total_cents'":
            pl.col("largest_cents") + pl.col("second_cents") > pl.col("total_cents"),
        "'persons' is 0 but 'total_cents' is not, or the other way round":
            (pl.col("persons") == 0) != (pl.col("total_cents") == 0),
        "'second_cents' is not 0 over fewer than two persons": (pl.col("persons") < 2) & (pl.col("second_cents") > 0),
        "'mean' is not 'total_cents' / 'persons' / 100":
            ((pl.col("mean") - pl.col("total_cents") / pl.col("persons") / 100).abs() > 1e-6).fill_null(
                (pl.col("persons") > 0) | pl.col("mean").is_not_null()),
    }
    for rule, expr in rules.items():
        bad = int(costs.select(expr.fill_null(False).sum()).item())
        if bad:
            problems.append(f"costs.parquet: {rule} in {counted(bad, 'row')}")
    columns = ["year", "condition", "sector", *strata]
    duplicates = costs.height - costs.select(columns).unique().height
    if duplicates:
        problems.append(f"costs.parquet: {counted(duplicates, 'row')} repeat the key {columns}")


def read_study(folder: Path) -> StudyFolder:
    """Read and check a study folder.

    Raises:
        StudyNotFoundError: the folder, its manifest or a table file is missing (exit 3).
        StudyFormatError: a file cannot be read, or the columns are not the study's (exit 4).
        StudyContractError: the values break the tables' rules; every problem listed (exit 5).
    """
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not folder.is_dir() or not manifest_path.is_file():
        msg = f"{folder}: not a study folder (no manifest.json); run pfl-study first"
        raise StudyNotFoundError(msg)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        msg = f"{manifest_path}: not a readable JSON manifest"
        raise StudyFormatError(msg) from None
    if not isinstance(manifest, dict) or "study_config_sha256" not in manifest:
        msg = f"{manifest_path}: not the manifest of a study folder (no study_config_sha256)"
        raise StudyFormatError(msg)
    # Printed into the release (grouped in fours, release.public_ids): hex, nothing else.
    config, key_id = manifest["study_config_sha256"], manifest.get("project_key_id")
    if not (isinstance(config, str) and _SHA256.fullmatch(config)):
        msg = f"{manifest_path}: 'study_config_sha256' is not a SHA-256 in lower-case hex"
        raise StudyFormatError(msg)
    if key_id is not None and not (isinstance(key_id, str) and _KEY_ID.fullmatch(key_id)):
        msg = f"{manifest_path}: 'project_key_id' is not a key id in lower-case hex"
        raise StudyFormatError(msg)
    kind, steps = _design(manifest, manifest_path)
    cohort_table = COHORT_TABLES[kind]
    try:
        head = pl.read_parquet_schema(folder / f"{cohort_table}.parquet")
    except FileNotFoundError:
        msg = f"{folder}: not a complete study folder ({cohort_table}.parquet is missing); run pfl-study"
        raise StudyNotFoundError(msg) from None
    except (pl.exceptions.PolarsError, OSError):
        msg = f"{folder / f'{cohort_table}.parquet'}: not a readable Parquet file"
        raise StudyFormatError(msg) from None
    strata = tuple(s for s in STRATA if s in head)
    problems: list[str] = []
    names = list(_REQUIRED[kind])
    optional = (_OPTIONAL if kind != "prevalence" else ()) + tuple(OPTIONAL)
    names += [t for t in optional if (folder / f"{t}.parquet").is_file()]
    tables = {name: _read(folder, name, strata if name in _STRATIFIED else (), problems) for name in names}
    if problems:
        raise StudyContractError(problems)
    checked = {name: frame for name, frame in tables.items() if frame is not None}
    _check_rules(checked, strata, problems, cohort_table)
    unknown = sorted(set(checked["attrition"]["step"].unique()) - {"base", *steps}) if "attrition" in checked else []
    if unknown:
        problems.append(f"attrition.parquet: {counted(len(unknown), 'step')} not in the manifest's chain")
    if problems:
        raise StudyContractError(problems)
    fingerprints = {"manifest.json": file_sha256(manifest_path)}
    fingerprints |= {f"{name}.parquet": file_sha256(folder / f"{name}.parquet") for name in names}
    return StudyFolder(folder, manifest, checked, strata, fingerprints, steps, cohort_table)


def _design(manifest: dict, path: Path) -> tuple[str, tuple[str, ...]]:
    """The cohort type and attrition steps of a study manifest (schema 1: prevalence, X1-X7)."""
    cohort = manifest.get("cohort")
    if cohort is None:
        return "prevalence", RULES
    kind, chain = (cohort.get("type"), cohort.get("chain")) if isinstance(cohort, dict) else (None, None)
    if kind not in COHORT_TABLES or not isinstance(chain, list) or not all(isinstance(s, str) for s in chain) \
            or len(set(chain)) != len(chain) or "base" in chain:
        msg = f"{path}: 'cohort' is not a cohort design (type {list(COHORT_TABLES)}, chain: a list of step names)"
        raise StudyFormatError(msg)
    return str(kind), tuple(chain)
