"""The patient-flow study: attrition, prevalence, care use, referrals, top groups, ACSC.

``run_study`` computes every output table of ``shared/spec/method.md`` section 8 from the
linked layout, as tidy tables of counts (numerator and denominator) that disclosure control
acts on. These are person-level-derived aggregates *before* disclosure control: they stay in the
working folder and are never presented as releasable.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

from cohort import members as who
from cohort.config import StudyConfig
from cohort.costs import cost_cells
from cohort.outcomes import ALL_CAUSE_ALWAYS, claim_units, condition_codes, ehr_events, membership
from cohort.population import RULES, Linked, base_population, has_link_method
from execution import Executor
from extracts.codes import icpc_base

__all__ = ["TABLE_KEYS", "is_all_cause", "run_study", "top_ranked"]

# Key columns of each output table (strata columns are added after ``year``/``condition``).
TABLE_KEYS = {
    "attrition": ["year", "condition", "step"],
    "prevalence": ["year", "condition"],
    "care_use": ["year", "condition", "discipline"],
    "care_use_change": ["condition", "discipline", "year_from", "year_to"],
    "referrals": ["year", "condition"],
    "top": ["year", "discipline", "rank"],
    "acsc": ["year"],
    "costs": ["year", "condition", "sector"],  # only when the study asks for costs
    "fallback_links": ["year"],  # only when the linked layout says how each record was linked
}
TOP_DISCIPLINES = ("HA", "HAP", "FT", "OT", "DT", "SEH")
_COUNT = pl.Int64


def _attrition(base: pl.DataFrame, members: pl.DataFrame, year: int, names: tuple[str, ...],
               steps: tuple[str, ...] = RULES) -> pl.DataFrame:
    """Per rule: before, excluded, after; overall ("all") and per condition (method 9.15)."""
    groups = [("all", base)] + [
        (name, base.join(members.filter(pl.col("condition") == name), on="patient_id", how="semi"))
        for name in names
    ]
    rows = []
    for condition, frame in groups:
        counts = dict(frame.group_by("excluded_by").len().iter_rows())
        remaining = frame.height
        rows.append((year, condition, "base", remaining, 0, remaining))
        for rule in steps:
            excluded = counts.get(rule, 0)
            rows.append((year, condition, rule, remaining, excluded, remaining - excluded))
            remaining -= excluded
    return pl.DataFrame(
        rows, orient="row",
        schema={"year": _COUNT, "condition": pl.String, "step": pl.String, "before": _COUNT, "excluded": _COUNT, "after": _COUNT},
    )


def _events(linked: Linked, units: pl.LazyFrame, study: pl.DataFrame, year: int) -> pl.DataFrame:
    """Qualifying contacts of study persons in ``year``: patient_id, discipline, code, group."""
    people = study.lazy().select("patient_id", "p2")
    ehr = [
        lf.filter(pl.col("year") == year)
        .join(people, on="patient_id", how="semi")
        .select("patient_id", pl.lit(d).alias("discipline"), pl.col("group").alias("code"))
        for d, lf in ehr_events(linked, (year,)).items()
    ]
    claims = (
        units.filter(pl.col("service_date").dt.year() == year)
        .filter((pl.col("sector") != "MSZ") | pl.col("care_type").is_in(["poli", "opname"]))
        .join(people, on="p2")
        .select("patient_id", pl.col("sector").alias("discipline"), "code")
    )
    return pl.concat([*ehr, claims]).collect(engine="streaming")


def is_all_cause(config: StudyConfig, condition: str, discipline: str) -> bool:
    cond = config.catalogue[condition]
    return (
        cond.all_cause
        or discipline in ALL_CAUSE_ALWAYS
        or (discipline == "DT" and config.dietetics_all_cause)
        # method.md 9.10: every GGZ claim is condition-specific care for mental health problems.
        or discipline in ("GGZ_B", "GGZ_S")
    )


def _care_use(config: StudyConfig, events: pl.DataFrame, prevalent: pl.DataFrame, year: int, strata: list[str],
              population: pl.DataFrame, members: who.Members) -> pl.DataFrame:
    """care_use of one year; ``population``: the study population, whose strata make the grid."""
    icpc, claims = condition_codes(config)
    specific_codes = pl.concat([
        icpc.join(pl.DataFrame({"discipline": ["HA", "POH-GGZ"]}), how="cross").select("condition", "discipline", pl.col("icpc_base").alias("code")),
        claims.filter(pl.col("sector").is_in(["MSZ", "FT", "OT", "DT"])).select("condition", pl.col("sector").alias("discipline"), "code"),
    ])
    plan = pl.DataFrame(
        [(c, d, is_all_cause(config, c, d)) for c, ds in config.disciplines.items() for d in ds],
        schema={"condition": pl.String, "discipline": pl.String, "all_cause": pl.Boolean}, orient="row",
    )
    any_hit = events.select("patient_id", "discipline").unique()
    specific_hit = events.join(specific_codes, on=["discipline", "code"]).select("patient_id", "condition", "discipline").unique()
    cells = prevalent.join(plan, on="condition")
    hits = pl.concat([
        cells.filter("all_cause").join(any_hit, on=["patient_id", "discipline"], how="semi"),
        cells.filter(~pl.col("all_cause")).join(specific_hit, on=["patient_id", "condition", "discipline"], how="semi"),
    ])
    keys = ["condition", "discipline", *strata]
    members.add("care_use", "n", hits.with_columns(pl.lit(year, _COUNT).alias("year")))
    members.add("care_use", "N", prevalent.with_columns(pl.lit(year, _COUNT).alias("year")))
    n = hits.group_by(keys).agg(pl.len().alias("n"))
    big_n = cells.group_by(keys).agg(pl.len().alias("N"))
    # The full grid: a configured (condition, discipline) with no prevalent person is 0 of 0, in
    # every stratum of the study population (as the prevalence table).
    grid = plan.select("condition", "discipline")
    if strata:
        grid = grid.join(population.select(strata).unique(), how="cross")
    return grid.join(big_n, on=keys, how="left", nulls_equal=True).join(n, on=keys, how="left", nulls_equal=True).select(
        pl.lit(year, _COUNT).alias("year"), *keys, pl.col("n").fill_null(0).cast(_COUNT),
        pl.col("N").fill_null(0).cast(_COUNT),
    )


def _referrals(linked: Linked, config: StudyConfig, prevalent: pl.DataFrame, year: int,
               members: who.Members) -> pl.DataFrame:
    icpc, _ = condition_codes(config)
    delivering = linked.ehr("practice_years").filter((pl.col("year") == year) & pl.col("referrals_delivered")).select("practice_id").collect()
    denominator = prevalent.join(delivering, on="practice_id", how="semi")
    refs = (
        linked.ehr("referrals")
        .filter((pl.col("referral_date").dt.year() == year) & pl.col("specialism").is_not_null() & (pl.col("specialism") != "GGZ"))
        .select("patient_id", icpc_base(pl.col("icpc")).alias("icpc_base"))
        .join(denominator.lazy().select("patient_id"), on="patient_id", how="semi")
        .collect()
    )
    all_cause = [c.name for c in config.catalogue.conditions if c.all_cause]
    hit = pl.concat([
        denominator.filter(pl.col("condition").is_in(all_cause)).join(refs, on="patient_id", how="semi").select("patient_id", "condition"),
        denominator.filter(~pl.col("condition").is_in(all_cause))
        .join(refs.join(icpc, on="icpc_base"), on=["patient_id", "condition"], how="semi").select("patient_id", "condition"),
    ])
    members.add("referrals", "n", hit.join(denominator.select("patient_id", "condition", "person"),
                                           on=["patient_id", "condition"]).with_columns(pl.lit(year, _COUNT).alias("year")))
    members.add("referrals", "N", denominator.with_columns(pl.lit(year, _COUNT).alias("year")))
    n = hit.group_by("condition").agg(pl.len().alias("n"))
    big_n = denominator.group_by("condition").agg(pl.len().alias("N"))
    return (
        pl.DataFrame({"condition": list(config.catalogue.names)})
        .join(big_n, on="condition", how="left")
        .join(n, on="condition", how="left")
        .select(pl.lit(year, _COUNT).alias("year"), "condition", pl.col("n").fill_null(0).cast(_COUNT),
                pl.col("N").fill_null(0).cast(_COUNT))
    )


def _top_counts(events: pl.DataFrame, year: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The top lists before ranking: contacts and persons per (discipline, group), contacts per
    discipline, and the events with their group (additive over partitions of persons: 9.13)."""
    code = pl.col("code")
    group = (
        pl.when(pl.col("discipline").is_in(["FT", "OT"]) & (code.str.len_chars() == 4))
        .then(code.str.slice(0, 1) + pl.lit("X") + code.str.slice(2, 2))
        .when(pl.col("discipline") == "SEH").then(code.str.slice(0, 3))
        .when(pl.col("discipline").is_in(["FT", "OT"])).then(None)
        .otherwise(code)
    )
    ev = events.filter(pl.col("discipline").is_in(list(TOP_DISCIPLINES))).with_columns(group.alias("group"))
    at_year = pl.lit(year, _COUNT).alias("year")
    totals = ev.group_by("discipline").agg(pl.len().cast(_COUNT).alias("total_contacts")).select(
        at_year, "discipline", "total_contacts")
    groups = ev.filter(pl.col("group").is_not_null()).group_by("discipline", "group").agg(
        pl.len().cast(_COUNT).alias("contacts"), pl.col("patient_id").n_unique().cast(_COUNT).alias("persons")
    ).select(at_year, "discipline", "group", "contacts", "persons")
    return groups, totals, ev


def top_ranked(groups: pl.DataFrame, totals: pl.DataFrame, top_n: int) -> pl.DataFrame:
    """method.md section 6: the ``top_n`` groups per year and discipline by contacts, with shares."""
    ranked = groups.sort(["year", "discipline", "contacts", "group"], descending=[False, False, True, False]).with_columns(
        pl.int_range(1, pl.len() + 1).over("year", "discipline").alias("rank")
    ).filter(pl.col("rank") <= top_n)
    return ranked.join(totals, on=["year", "discipline"]).select(
        "year", "discipline", pl.col("rank").cast(_COUNT), "group",
        pl.col("contacts").cast(_COUNT), (pl.col("contacts") / pl.col("total_contacts")).alias("share"),
        pl.col("persons").cast(_COUNT), pl.col("total_contacts").cast(_COUNT),
    )


def _top_persons(ev: pl.DataFrame, groups: pl.DataFrame, year: int, study: pl.DataFrame,
                 members: who.Members) -> None:
    members.add("top", "persons", ev.join(groups.select("discipline", "group"), on=["discipline", "group"])
                .join(study.select("patient_id", "person"), on="patient_id").with_columns(pl.lit(year, _COUNT).alias("year")))


def _top(config: StudyConfig, events: pl.DataFrame, year: int, study: pl.DataFrame, members: who.Members) -> pl.DataFrame:
    """method.md section 6 and 9.13: top groups per discipline with shares and persons."""
    groups, totals, ev = _top_counts(events, year)
    ranked = top_ranked(groups, totals, config.top_n)
    _top_persons(ev, ranked, year, study, members)
    return ranked


def _top_partial(events: pl.DataFrame, year: int, study: pl.DataFrame,
                 members: who.Members) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A partition's top lists before ranking (``top_groups``, ``top_totals``) and the persons of
    every group: the ranking waits for the partitions' sums (``cohort.reduce``)."""
    groups, totals, ev = _top_counts(events, year)
    _top_persons(ev, groups, year, study, members)
    return groups, totals


def _acsc(linked: Linked, config: StudyConfig, members: who.Members) -> pl.DataFrame:
    """method.md section 7 and 9.14: ACSC admissions and persons per year, claims only."""
    schema = {"year": _COUNT, "admissions": _COUNT, "persons": _COUNT}
    if not config.acsc.years:
        return pl.DataFrame(schema=schema)
    codes = pl.DataFrame({"code": [f"{s}:{d}" for s, d in config.acsc.codes]})
    years = list(config.acsc.years)
    units = (
        claim_units(linked, None)
        .filter((pl.col("sector") == "MSZ") & (pl.col("care_type") == "opname") & pl.col("service_date").dt.year().is_in(years))
        .join(codes.lazy(), on="code", how="semi")
        .with_columns(pl.col("service_date").dt.year().alias("year"))
    )
    not_wlz = linked.claims("insured").filter(pl.col("p2").is_not_null() & ~pl.col("wlz_institution")).select("p2", "year").unique()
    # The admissions counted (one row each: a few per thousand persons), read from the claims once.
    counted_units = units.join(not_wlz, on=["p2", "year"], how="semi").select("year", "p2").collect()
    members.add("acsc", "persons", who.by_number(linked.root, counted_units.select(pl.col("year").cast(_COUNT), "p2")
                                                 .unique()))
    counted = counted_units.group_by("year").agg(pl.len().alias("admissions"), pl.col("p2").n_unique().alias("persons"))
    return pl.DataFrame({"year": years}, schema={"year": _COUNT}).join(
        counted.with_columns(pl.col("year").cast(_COUNT)), on="year", how="left"
    ).select("year", pl.col("admissions").fill_null(0).cast(_COUNT), pl.col("persons").fill_null(0).cast(_COUNT))


def _change(care_use: pl.DataFrame, years: tuple[int, ...], strata: list[str]) -> pl.DataFrame:
    """Percentage-point change between consecutive reference years, from unrounded shares (9.11)."""
    keys = ["condition", "discipline", *strata]
    shares = care_use.with_columns((pl.col("n") / pl.col("N")).alias("share"))
    parts = []
    for a, b in zip(years, years[1:], strict=False):
        left = shares.filter(pl.col("year") == a).select(*keys, pl.col("share").alias("share_from"))
        right = shares.filter(pl.col("year") == b).select(*keys, pl.col("share").alias("share_to"))
        parts.append(left.join(right, on=keys, nulls_equal=True).select(
            "condition", "discipline", *strata, pl.lit(a, _COUNT).alias("year_from"), pl.lit(b, _COUNT).alias("year_to"),
            "share_from", "share_to", ((pl.col("share_to") - pl.col("share_from")) * 100).alias("change_pp"),
        ))
    if parts:
        return pl.concat(parts)
    # One reference year: no change, but the table keeps its columns (release/study_folder.py).
    return pl.DataFrame(schema={"condition": pl.String, "discipline": pl.String, **{s: pl.String for s in strata},
                                "year_from": _COUNT, "year_to": _COUNT, "share_from": pl.Float64,
                                "share_to": pl.Float64, "change_pp": pl.Float64})


def _sorted(frame: pl.DataFrame, table: str, strata: list[str], steps: tuple[str, ...] = RULES) -> pl.DataFrame:
    keys = TABLE_KEYS[table] + (strata if table in ("prevalence", "care_use", "costs") else [])
    if table == "attrition":  # keep the chain in its order: base, X1..X7 (or the study's criteria)
        order = {step: i for i, step in enumerate(("base", *steps))}
        return frame.sort(["year", "condition", pl.col("step").replace_strict(order)])
    return frame.sort(keys)


def run_study(
    linked_path: Path | Linked, config: StudyConfig, *, progress: Callable[[str, int, int], None] | None = None,
    scratch: Path | None = None, population: Callable[[Linked, int], pl.LazyFrame] | None = None,
    chain: tuple[str, ...] = RULES, executor: Executor | None = None, partitions: int = 1, partial: bool = False,
) -> dict[str, pl.DataFrame]:
    """Compute every output table of the study from the linked layout.

    Args:
        linked_path: the linked folder (or a view of it: a partition, ``cohort.partitioned``).
        config: the study.
        progress: called with (the step about to run, steps done, steps in all).
        scratch: an owner-only folder for the person-level claim units spilled to disk, which the
            caller removes (``pfl-study`` and the demo give :func:`extracts.atomic.scratch`
            beside the output, removed even after a kill by the next run); None: a temporary
            folder of the system, removed when the study ends (library use and tests).
        population: the base population of a year with ``excluded_by`` (default
            :func:`~cohort.population.base_population`: X1-X7 in method order); a schema 2 study
            gives its own criteria (``cohort.compile``).
        chain: the attrition steps after ``base``, in order (the values of ``excluded_by``).
        executor: where the partitions run (None: in this process).
        partitions: K >= 1; K > 1 runs the study on K partitions of the persons and unites their
            counts exactly (``cohort.partitioned``): the same tables as K = 1. A schema 2 study
            (``population``) runs partitioned through ``cohort.compile.run_compiled``.
        partial: a partition's counts, not the finished tables (``cohort.reduce`` finishes them).
    """
    if partitions != 1:
        if population is not None:
            msg = "run_study: a study with its own population runs partitioned through cohort.compile.run_compiled"
            raise ValueError(msg)
        from cohort.partitioned import run_partitioned  # noqa: PLC0415 - it imports this module

        return run_partitioned(Path(linked_path), config, executor=executor, partitions=partitions, scratch=scratch,
                               progress=progress)
    linked = linked_path if isinstance(linked_path, Linked) else Linked(Path(linked_path))
    strata = list(config.strata)
    years = config.reference_years
    steps = 2 * len(years) + 2
    step = _steps(progress, steps)
    bases = {}
    for y in years:
        step(f"base population {y}")
        frame = population(linked, y) if population is not None else base_population(linked, y, config)
        bases[y] = who.person_numbers(linked, frame.collect(engine="streaming"))
    persons = pl.concat([b.filter(pl.col("p2").is_not_null()).select("p2") for b in bases.values()]).unique()
    lookback = max((s.lookback_years for c in config.catalogue.conditions for s in c.subconditions), default=0)
    needed = sorted({y - k for y in config.reference_years for k in range(lookback + 1)})
    step("claim units")
    with contextlib.ExitStack() as stack:
        folder = scratch if scratch is not None else stack.enter_context(tempfile.TemporaryDirectory(prefix="pfl-study-"))
        # Netted claim units of the base population, spilled to disk once: every later query
        # scans them lazily instead of holding tens of millions of rows in memory.
        units_path = Path(folder) / "claim_units.parquet"
        units = claim_units(linked, persons.lazy(), cost=bool(config.cost_sectors))
        units.filter(pl.col("service_date").dt.year().is_in(needed)).sink_parquet(units_path, compression="lz4")
        members = who.Members(strata)
        tables = who.StudyTables(_tables(linked, config, bases, pl.scan_parquet(units_path), strata, step, members,
                                         chain, partial=partial))
    step("ACSC admissions")
    tables["acsc"] = _acsc(linked, config, members)
    tables.members = members  # the persons behind each count: cohort.members, never releasable
    step("done")
    return tables


def _steps(progress: Callable[[str, int, int], None] | None, total: int) -> Callable[[str], None]:
    """A function announcing each step in turn to ``progress`` (which may be None)."""
    done = -1

    def step(name: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(name, done, total)

    return step


def _tables(
    linked: Linked, config: StudyConfig, bases: dict[int, pl.DataFrame], units: pl.LazyFrame, strata: list[str],
    step: Callable[[str], None], members: who.Members, steps: tuple[str, ...] = RULES, *, partial: bool = False,
) -> dict[str, pl.DataFrame]:
    skip = ("care_use_change", "acsc", "costs", "fallback_links", *(("top",) if partial else ()))
    out: dict[str, list[pl.DataFrame]] = {k: [] for k in TABLE_KEYS if k not in skip}
    if partial:  # the pre-rank top lists where the finished study has its top list (cohort.reduce)
        out |= {"top_groups": [], "top_totals": []}
    if config.cost_sectors:
        out["costs"] = []
    if has_link_method(linked):
        out["fallback_links"] = []
    names = config.catalogue.names
    for year, base in bases.items():
        step(f"conditions, care use and referrals {year}")
        found = membership(linked, base.lazy(), units, year, config).collect(engine="streaming")
        out["attrition"].append(_attrition(base, found, year, names, steps))
        who.attrition(members, year, [("all", base)] + [
            (name, base.join(found.filter(pl.col("condition") == name), on="patient_id", how="semi")) for name in names],
            steps)
        study = base.filter(pl.col("excluded_by").is_null())
        if "fallback_links" in out:
            out["fallback_links"].append(who.fallback_links(members, year, study))
        prevalent = study.join(found, on="patient_id")
        members.add("prevalence", "numerator", prevalent.with_columns(pl.lit(year, _COUNT).alias("year")))
        members.add("prevalence", "denominator", study.with_columns(pl.lit(year, _COUNT).alias("year")))
        # The full grid: every condition in every stratum of the study population (0 of N).
        denominators = (
            study.group_by(strata).agg(pl.len().alias("denominator"))
            if strata else pl.DataFrame({"denominator": [study.height]})
        )
        grid = pl.DataFrame({"condition": list(names)}).join(denominators, how="cross")
        prevalence = grid.join(
            prevalent.group_by("condition", *strata).agg(pl.len().alias("numerator")),
            on=["condition", *strata], how="left", nulls_equal=True,  # an unknown stratum value is a stratum
        )
        out["prevalence"].append(prevalence.select(
            pl.lit(year, _COUNT).alias("year"), "condition", *strata,
            pl.col("numerator").fill_null(0).cast(_COUNT), pl.col("denominator").cast(_COUNT),
        ))
        events = _events(linked, units, study, year)
        out["care_use"].append(_care_use(config, events, prevalent, year, strata, study, members))
        out["referrals"].append(_referrals(linked, config, prevalent, year, members))
        if partial:
            groups, totals = _top_partial(events, year, study, members)
            out["top_groups"].append(groups)
            out["top_totals"].append(totals)
        else:
            out["top"].append(_top(config, events, year, study, members))
        if config.cost_sectors:
            # Claimed costs of the prevalent persons in the year, all-cause, per sector (issue 12).
            payers = prevalent.select("p2", pl.lit(year, _COUNT).alias("year"), "condition", *strata)
            costs, paid = cost_cells(units, payers, ["year", "condition", *strata], sectors=config.cost_sectors)
            out["costs"].append(costs)
            members.add("costs", "persons", who.by_number(linked.root, paid))
    if partial:  # a partition's counts: summed, sorted and ranked once united (cohort.reduce)
        tables = {k: pl.concat(v) for k, v in out.items()}
        # The partition's own change, in the place the finished study has it (cohort.reduce keeps
        # the partitions' order of tables); the reduce computes it again from the summed counts.
        tables["care_use_change"] = _change(tables["care_use"], config.reference_years, strata)
        return tables
    tables = {k: _sorted(pl.concat(v), k, strata, steps) for k, v in out.items()}
    tables["care_use_change"] = _change(tables["care_use"], config.reference_years, strata)
    return tables
