"""A tiny DSL that writes a *linked layout* (``linkage/link.py``) from a few rows, for spec tests.

Each test states only what matters for its rule; everything else defaults to "this person is in
the study population of every reference year":

- a patient gets a valid pseudonym ``p2_of(name)`` (``P2v1.00000000.`` + 32 hex, one per name);
- without an explicit :meth:`LinkedBuilder.registered`, the patient is registered at practice
  ``P1`` from birth (or 1990-01-01 when the birth date is unknown) until the EHR death date;
- without an explicit :meth:`LinkedBuilder.insured`, the person has one insured row per year
  2015..2023 with insurer ``0101``, the EHR birth date and sex, and no Wlz stay;
- every insurer used has ``insurer_years`` rows with ``complete = true`` for 2015..2023
  (override with :meth:`LinkedBuilder.insurer_year`);
- every practice used has a ``practices`` row (region ``R01``) and ``practice_years`` rows
  2015..2023 with ``referrals_delivered = true`` (override with :meth:`LinkedBuilder.practice`);
- with ``fill_contacts=True`` (the default) each practice used gets one ICPC-coded ``OTHER``
  contact per year 2015..2023 by a filler id that is not a patient, so that no practice is a
  "practice without contacts"; the filler is invisible to everything but exclusion X6.

The thresholds of exclusion X6 (>= 500 patients, >= 46 weeks, >= 70 % coded) are lowered by
``study_config(lenient=True)``; X6 tests use the real thresholds with :meth:`filler_patients`
and :meth:`activity` to put a practice exactly on either side of each threshold.

Usage::

    path = (
        LinkedBuilder()
        .patient("a", birth="1960-05-01", sex="F")
        .episode("a", "T90", "2015-01-01")
        .contact("a", "2019-03-01", provider="HA", type="consult", icpc="T90")
        .claim("a", "2019-05-01", sector="MSZ", care_type="poli", specialism="0313", diagnosis="221")
        .write(tmp_path)
    )
    tables = run_study(path, study_config(lenient=True, reference_years=[2019]))
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from omegaconf import OmegaConf

from cohort.config import StudyConfig, parse_study
from extracts.codelists import load_catalogue

__all__ = [
    "DATA_YEARS",
    "LENIENT_SUFFICIENCY",
    "LinkedBuilder",
    "p2_of",
    "study_config",
]

ROOT = Path(__file__).resolve().parents[1]
STUDY_YAML = ROOT / "conf" / "study" / "seed_study.yaml"
CONDITIONS_YAML = ROOT / "conf" / "conditions" / "seed_study.yaml"

DATA_YEARS = range(2015, 2024)
LENIENT_SUFFICIENCY = {"min_patients": 1, "min_weeks": 0, "min_icpc_share": 0.0}
DEFAULT_INSURER = "0101"
DEFAULT_PRACTICE = "P1"

_STR, _DATE, _BOOL, _YEAR = pl.String(), pl.Date(), pl.Boolean(), pl.Int32()
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "ehr/patients": {"patient_id": _STR, "p2": _STR, "bsn_status": _STR, "birth_date": _DATE, "sex": _STR,
                     "death_date": _DATE, "postcode4": _STR, "link_method": _STR},
    "ehr/registrations": {"patient_id": _STR, "practice_id": _STR, "start_date": _DATE, "end_date": _DATE},
    "ehr/practices": {"practice_id": _STR, "region": _STR},
    "ehr/practice_years": {"practice_id": _STR, "year": _YEAR, "referrals_delivered": _BOOL},
    "ehr/episodes": {"patient_id": _STR, "icpc": _STR, "start_date": _DATE, "end_date": _DATE},
    "ehr/contacts": {"patient_id": _STR, "practice_id": _STR, "contact_date": _DATE, "provider": _STR,
                     "contact_type": _STR, "icpc": _STR},
    "ehr/referrals": {"patient_id": _STR, "practice_id": _STR, "referral_date": _DATE, "specialism": _STR,
                      "icpc": _STR},
    "ehr/ooh_contacts": {"patient_id": _STR, "contact_date": _DATE, "contact_type": _STR, "icpc": _STR},
    "claims/insured": {"p2": _STR, "bsn_status": _STR, "year": _YEAR, "insurer": _STR, "birth_date": _DATE,
                       "sex": _STR, "death_date": _DATE, "wlz_institution": _BOOL},
    "claims/claims": {"claim_id": _STR, "p2": _STR, "bsn_status": _STR, "insurer": _STR, "service_date": _DATE,
                      "sector": _STR, "care_type": _STR, "specialism": _STR, "diagnosis_code": _STR,
                      "cost_eur": pl.Decimal(12, 2)},
    "claims/insurer_years": {"insurer": _STR, "year": _YEAR, "complete": _BOOL},
}

_DEFAULT = object()  # sentinel: "use the default" where None is a meaningful value


def p2_of(name: str) -> str:
    """The project pseudonym of person ``name``: a labelled P2 with a per-name hex part."""
    return "P2v1.00000000." + hashlib.sha256(name.encode()).hexdigest()[:32]


def _date(value: str | dt.date | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


@dataclass
class _Patient:
    pid: str
    p2: str | None
    bsn_status: str
    birth: dt.date | None
    sex: str | None
    death: dt.date | None
    postcode4: str | None
    link_method: str | None = None


@dataclass
class _Practice:
    region: str = "R01"
    years: tuple[int, ...] = tuple(DATA_YEARS)
    referrals: Mapping[int, bool] | bool = True

    def delivered(self, year: int) -> bool:
        return self.referrals if isinstance(self.referrals, bool) else self.referrals.get(year, True)


@dataclass
class LinkedBuilder:
    """Collects rows of a linked layout; :meth:`write` fills in the defaults and writes Parquet.

    Args:
        fill_contacts: give every practice used one coded filler contact per data year (see
            the module docstring); X6 tests switch it off to control a practice's contacts.
    """

    fill_contacts: bool = True
    _patients: dict[str, _Patient] = field(default_factory=dict)
    _registrations: list[tuple] = field(default_factory=list)
    _explicit_reg: set[str] = field(default_factory=set)
    _insured: list[tuple] = field(default_factory=list)
    _explicit_ins: set[str] = field(default_factory=set)
    _practices: dict[str, _Practice] = field(default_factory=dict)
    _insurer_years: dict[tuple[str, int], bool | None] = field(default_factory=dict)
    _rows: dict[str, list[tuple]] = field(default_factory=lambda: {k: [] for k in SCHEMAS})
    _claim_seq: int = 0

    # -- people -------------------------------------------------------------------------------
    def patient(
        self,
        pid: str,
        *,
        birth: str | dt.date | None = "1960-01-01",
        sex: str | None = "F",
        death: str | dt.date | None = None,
        p2: Any = _DEFAULT,
        bsn_status: str | None = None,
        postcode4: str | None = "1011",
        link_method: str | None = None,
    ) -> LinkedBuilder:
        """An EHR patient record. ``p2=None`` = no valid BSN (not linkable); ``p2=p2_of("b")``
        gives the record the pseudonym of person ``b`` (a BSN shared by two records).
        ``link_method`` (default ``bsn`` where there is a pseudonym): how the TTP linked it."""
        pseudonym = p2_of(pid) if p2 is _DEFAULT else p2
        status = bsn_status or ("valid" if pseudonym is not None else "missing")
        method = link_method or ("bsn" if pseudonym is not None else None)
        self._patients[pid] = _Patient(pid, pseudonym, status, _date(birth), sex, _date(death), postcode4, method)
        return self

    def registered(
        self, pid: str, practice: str, start: str | dt.date, end: str | dt.date | None = None
    ) -> LinkedBuilder:
        """A registration; the first call for a patient replaces the default registration."""
        self._explicit_reg.add(pid)
        self._registrations.append((pid, practice, _date(start), _date(end)))
        return self

    def insured(
        self,
        person: str,
        *,
        years: Iterable[int] = DATA_YEARS,
        insurer: str = DEFAULT_INSURER,
        birth: Any = _DEFAULT,
        sex: Any = _DEFAULT,
        death: str | dt.date | None = None,
        wlz_years: Iterable[int] = (),
        p2: Any = _DEFAULT,
    ) -> LinkedBuilder:
        """Insured rows of ``person`` (one per year); calls add rows, the first call replaces
        the default rows. ``years=()`` = never insured. Birth and sex default to the EHR values."""
        self._explicit_ins.add(person)
        wlz = set(wlz_years)
        for year in years:
            self._insured.append((person, p2, year, insurer, birth, sex, _date(death), year in wlz))
        return self

    # -- practices and insurers ---------------------------------------------------------------
    def practice(
        self,
        practice: str,
        *,
        region: str = "R01",
        years: Iterable[int] = DATA_YEARS,
        referrals: Mapping[int, bool] | bool = True,
    ) -> LinkedBuilder:
        """A practice's ``practices`` and ``practice_years`` rows; ``years`` without a year =
        no ``practice_years`` row that year; ``referrals`` per year or for all years."""
        self._practices[practice] = _Practice(region, tuple(years), referrals)
        return self

    def insurer_year(self, insurer: str, year: int, *, complete: bool | None) -> LinkedBuilder:
        """Override an ``insurer_years`` row; ``complete=None`` removes the row."""
        self._insurer_years[(insurer, year)] = complete
        return self

    def filler_patients(self, practice: str, n: int, *, start: str = "2000-01-01") -> LinkedBuilder:
        """``n`` registrations at ``practice`` by ids that are not patients (X6 list size only)."""
        for i in range(n):
            self._registrations.append((f"~{practice}-{i:04d}", practice, _date(start), None))
        return self

    def activity(self, practice: str, year: int, *, weeks: int, coded: int, uncoded: int = 0,
                 invalid: int = 0, start: str | dt.date | None = None) -> LinkedBuilder:
        """Filler contacts at ``practice`` in ``year`` (X6): spread over ``weeks`` distinct ISO
        weeks (Mondays from ``start``, default the 2nd Monday of the year); ``coded`` carry a
        valid ICPC, ``uncoded`` none, ``invalid`` an ICPC that does not normalise to a code."""
        first = _date(start) or dt.date(year, 1, 8) + dt.timedelta(days=(7 - dt.date(year, 1, 8).weekday()) % 7)
        dates = [first + dt.timedelta(weeks=k) for k in range(weeks)]
        assert all(d.year == year for d in dates), "activity: weeks run past the year"
        codes = ["A01"] * coded + [None] * uncoded + ["T9"] * invalid
        assert len(codes) >= weeks, "activity: fewer contacts than weeks"
        for i, code in enumerate(codes):
            self._rows["ehr/contacts"].append(
                (f"~{practice}-act", practice, dates[i % weeks], "OTHER", "overig", code)
            )
        return self

    # -- events -------------------------------------------------------------------------------
    def episode(self, pid: str, icpc: str, start: str | dt.date, end: str | dt.date | None = None) -> LinkedBuilder:
        self._rows["ehr/episodes"].append((pid, icpc, _date(start), _date(end)))
        return self

    def contact(
        self, pid: str, date: str | dt.date, *, provider: str = "HA", type: str = "consult",  # noqa: A002
        icpc: str | None = None, practice: str | None = None,
    ) -> LinkedBuilder:
        """A GP-practice contact; ``practice`` defaults to the patient's first practice."""
        self._rows["ehr/contacts"].append((pid, practice, _date(date), provider, type, icpc))
        return self

    def referral(self, pid: str, date: str | dt.date, *, specialism: str | None = "0313",
                 icpc: str | None = None, practice: str | None = None) -> LinkedBuilder:
        self._rows["ehr/referrals"].append((pid, practice, _date(date), specialism, icpc))
        return self

    def ooh(self, pid: str, date: str | dt.date, *, type: str = "consult", icpc: str | None = None) -> LinkedBuilder:  # noqa: A002
        """A contact at an out-of-hours GP post (HAP)."""
        self._rows["ehr/ooh_contacts"].append((pid, _date(date), type, icpc))
        return self

    def claim(
        self,
        person: str | None,
        date: str | dt.date,
        *,
        sector: str,
        care_type: Any = _DEFAULT,
        specialism: str | None = None,
        diagnosis: str | None = None,
        code: str | None = None,
        cost: str | Decimal = "100.00",
        insurer: str = DEFAULT_INSURER,
    ) -> LinkedBuilder:
        """A claim line of ``person`` (``None`` = unlinkable: p2 null). ``code`` is a shorthand:
        ``"0313:221"`` for an MSZ pair, else the diagnosis code. MSZ care_type defaults to poli."""
        if code is not None:
            if sector == "MSZ":
                specialism, _, diagnosis = code.partition(":")
            else:
                diagnosis = code
        if care_type is _DEFAULT:
            care_type = "poli" if sector == "MSZ" else None
        self._claim_seq += 1
        p2 = None if person is None else self._p2(person)
        self._rows["claims/claims"].append((
            f"c{self._claim_seq:05d}", p2, "valid" if p2 else "missing", insurer, _date(date), sector,
            care_type, specialism, diagnosis, Decimal(cost),
        ))
        return self

    # -- writing ------------------------------------------------------------------------------
    def _p2(self, person: str) -> str | None:
        patient = self._patients.get(person)
        return patient.p2 if patient is not None else p2_of(person)

    def tables(self) -> dict[str, pl.DataFrame]:
        """Every table of the linked layout, defaults filled in."""
        rows = {k: list(v) for k, v in self._rows.items()}
        rows["ehr/patients"] = [
            (p.pid, p.p2, p.bsn_status, p.birth, p.sex, p.death, p.postcode4, p.link_method)
            for p in self._patients.values()
        ]
        registrations = list(self._registrations)
        for p in self._patients.values():
            if p.pid not in self._explicit_reg:
                registrations.append((p.pid, DEFAULT_PRACTICE, p.birth or dt.date(1990, 1, 1), p.death))
        rows["ehr/registrations"] = registrations
        first_practice: dict[str, str] = {}
        for pid, practice, *_ in registrations:
            first_practice.setdefault(pid, practice)
        for table in ("ehr/contacts", "ehr/referrals"):
            rows[table] = [(r[0], r[1] or first_practice.get(r[0], DEFAULT_PRACTICE), *r[2:]) for r in rows[table]]

        insured: list[tuple] = []
        for p in self._patients.values():
            if p.pid not in self._explicit_ins and p.p2 is not None:
                insured += [(p.p2, "valid", y, DEFAULT_INSURER, p.birth, p.sex, None, False) for y in DATA_YEARS]
        for person, p2, year, insurer, birth, sex, death, wlz in self._insured:
            ehr = self._patients.get(person)
            pseudonym = self._p2(person) if p2 is _DEFAULT else p2
            insured.append((
                pseudonym, "valid" if pseudonym else "missing", year, insurer,
                (ehr.birth if ehr else None) if birth is _DEFAULT else _date(birth),
                (ehr.sex if ehr else None) if sex is _DEFAULT else sex,
                death, wlz,
            ))
        rows["claims/insured"] = insured

        insurers = {r[3] for r in insured} | {r[3] for r in rows["claims/claims"]} | {i for i, _ in self._insurer_years}
        complete = {(i, y): True for i in insurers for y in DATA_YEARS} | self._insurer_years
        rows["claims/insurer_years"] = [(i, y, c) for (i, y), c in sorted(complete.items()) if c is not None]

        used = {r[1] for r in registrations} | {r[1] for r in rows["ehr/contacts"]} | {r[1] for r in rows["ehr/referrals"]}
        practices = {p: self._practices.get(p, _Practice()) for p in sorted(used | set(self._practices))}
        rows["ehr/practices"] = [(p, s.region) for p, s in practices.items()]
        rows["ehr/practice_years"] = [(p, y, s.delivered(y)) for p, s in practices.items() for y in s.years]
        if self.fill_contacts:
            rows["ehr/contacts"] += [
                (f"~{p}-fill", p, dt.date(y, 6, 15), "OTHER", "overig", "A01") for p in practices for y in DATA_YEARS
            ]
        return {k: pl.DataFrame(v, schema=SCHEMAS[k], orient="row") for k, v in rows.items()}

    def write(self, root: Path) -> Path:
        """Write the linked layout under ``root / "linked"`` and return that folder."""
        out = Path(root) / "linked"
        for name, frame in self.tables().items():
            path = out / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(path)
        return out


def _raw_study() -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(STUDY_YAML), resolve=True)  # type: ignore[return-value]


def study_config(*, lenient: bool = False, raw: Mapping[str, Any] | None = None, **overrides: Any) -> StudyConfig:
    """The seed study (``conf/study`` + ``conf/conditions``) with top-level keys overridden.

    Args:
        lenient: lower the X6 thresholds to 1 patient, 0 weeks, 0 % coded, so that tests of
            other rules need no filler population.
        raw: start from this mapping instead of the seed study (for invalid-config tests).
        **overrides: top-level keys of the study mapping, e.g. ``reference_years=[2019]``,
            ``dietetics_all_cause=False``, ``top_n=2``.
    """
    mapping = dict(_raw_study() if raw is None else raw)
    if lenient:
        mapping["practice_sufficiency"] = dict(LENIENT_SUFFICIENCY)
    mapping.update(overrides)
    return parse_study(mapping, load_catalogue(CONDITIONS_YAML))
