"""One block of the generated population: its persons, their records, claims and truth.

A block is persons ``index * chunk_persons`` up to the next block's first, drawn from the random
streams ``(seed, index)`` (and ``(seed, index, 0x1D)`` for the contract v2 identifiers,
``(seed, index, 0x1D, 0x6E)`` for the optional given name, street and city) and the
shared :class:`~extracts.generator.plan.Plan`. Blocks are independent of each other, so they may
be drawn in any order and on any worker; ``draw_block`` writes each of its tables once to the
sinks it is given (:mod:`extracts.generator.parts`).
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

import numpy as np
import polars as pl

from extracts.contract import CLAIMS, EHR, Table
from extracts.generator import vocab
from extracts.generator.care import SPECIALISMS, make_episodes, make_gp_events, make_slots
from extracts.generator.claims import CREDIT, KINDS, LONE_CREDIT, make_claims, make_insured
from extracts.generator.conditions import make_conditions
from extracts.generator.defects import ehr_bsn, claims_bsn, odd_case, odd_icpc
from extracts.generator.households import make_households
from extracts.generator.identity_columns import ehr_identities, insured_identities, transpose_birth_dates
from extracts.generator.given_names import given_names
from extracts.generator.names import initials_strings, surnames
from extracts.generator.optional_identifiers import STREAM, ehr_optional, insured_optional, person_given_names
from extracts.generator.persons import OPEN, SEXES, make_persons, make_registrations
from extracts.generator.plan import REGIONS, Plan, year_start
from extracts.generator.vocab import decode

__all__ = ["Sink", "claim_ids", "draw_block", "patient_ids"]


class Sink(Protocol):
    def write(self, name: str, df: pl.DataFrame, table: Table | None = None) -> None: ...


def _date(values: np.ndarray) -> pl.Series:
    """int32 days (OPEN = no date) to a polars Date series with nulls."""
    s = pl.Series("d", values.astype(np.int32))
    return pl.select(pl.when(s == OPEN).then(None).otherwise(s).cast(pl.Date)).to_series()


def _money(cents: np.ndarray) -> pl.Series:
    """Whole cents to decimal(12, 2) euros, exactly (no float rounding)."""
    c = pl.Series("c", cents)
    text = pl.concat_str(
        pl.when(c < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        (c.abs() // 100).cast(pl.String), pl.lit("."), (c.abs() % 100).cast(pl.String).str.zfill(2),
    )
    return pl.select(text.cast(pl.Decimal(12, 2))).to_series()


def patient_ids(gid: np.ndarray, record: np.ndarray) -> pl.Series:
    """Patient ids: a bijection of (person, record) into 9 digits, so they look unordered."""
    r = gid.astype(np.int64) * 2 + record
    v = (r * 387_420_489 + 123_456_789) % 1_000_000_000
    return pl.Series("patient_id", v).cast(pl.String).str.zfill(9).str.replace(r"^", "P")


def claim_ids(chunk: int, n: int) -> pl.Series:
    r = chunk * 1_000_000_000 + np.arange(n, dtype=np.int64)
    v = (r * 7_625_597_484_987 + 31_415_926_535) % 1_000_000_000_000
    return pl.Series("claim_id", v).cast(pl.String).str.zfill(12).str.replace(r"^", "C")


def draw_block(plan: Plan, index: int, ehr: Sink, claims: Sink, truth: Sink, defects: Counter) -> None:
    """Draw block ``index`` and write its tables to the sinks; count its defects in ``defects``."""
    cfg = plan.config
    rng = np.random.default_rng([cfg.seed, index])
    start = index * cfg.chunk_persons
    stop = min(start + cfg.chunk_persons, plan.n_total)
    p = make_persons(plan, rng, start, stop)
    reg = make_registrations(plan, rng, p)
    cond = make_conditions(plan, rng, p)
    names = np.array(plan.catalogue.names)

    # --- EHR patients: one main record per registered person, a second for double records.
    rec_key = np.unique(reg.person.astype(np.int64) * 2 + reg.record)
    rec_person, rec_record = rec_key // 2, (rec_key % 2).astype(np.int8)
    pids = patient_ids(p.gid[rec_person], rec_record)
    bsn, bsn_defect = ehr_bsn(plan, rng, p, rec_person, defects)
    birth = p.birth[rec_person].copy()
    unknown_birth = rng.random(len(rec_person)) < cfg.defects.birth_date_unknown
    defects["birth_date_unknown"] += int(unknown_birth.sum())
    birth[unknown_birth] = OPEN
    # Contract v2 identifiers come from their own random stream (`ident`), so that every v1
    # column is drawn as before they existed; the patients table is written once the insurers
    # are known (claims side, below).
    ident = np.random.default_rng([cfg.seed, index, 0x1D])
    hh = make_households(plan, ident, p, index)
    # The optional given name, street and city: a stream of their own again, so that the other
    # identifiers too are drawn as before they existed.
    extra = np.random.default_rng([cfg.seed, index, 0x1D, STREAM])
    given = person_given_names(extra, hh, p)
    birth, transposed = transpose_birth_dates(ident, birth, cfg.defects.birth_date_transposed,
                                              year_start(cfg.first_year), OPEN)
    defects["ehr_birth_date_transposed"] += int(transposed.sum())
    main_pid = np.full(len(p), -1, dtype=np.int64)
    main_pid[rec_person[rec_record == 0]] = np.flatnonzero(rec_record == 0)
    reg_pid_index = np.searchsorted(rec_key, reg.person.astype(np.int64) * 2 + reg.record)
    defects["double_record"] += int((rec_record == 1).sum())
    ehr.write("registrations", pl.DataFrame({
        "patient_id": pids.gather(reg_pid_index), "practice_id": decode(plan.practice_ids, reg.practice),
        "start_date": _date(reg.start), "end_date": _date(reg.end),
    }), EHR.table("registrations"))

    # --- episodes, contacts, out-of-hours contacts, referrals.
    ep_person, ep_icpc, ep_start, ep_end = make_episodes(plan, rng, p, reg, cond)
    ehr.write("episodes", pl.DataFrame({
        "patient_id": pids.gather(main_pid[ep_person]), "icpc": odd_icpc(rng, decode(plan.icpc_vocab, ep_icpc), cfg.defects.odd_code_format, defects),
        "start_date": _date(ep_start), "end_date": _date(ep_end),
    }), EHR.table("episodes"))
    slots = make_slots(plan, p, reg)
    contacts, ooh, referrals = make_gp_events(plan, rng, p, slots, cond)
    slot_pid = reg_pid_index[slots.reg]
    ehr.write("contacts", pl.DataFrame({
        "patient_id": pids.gather(slot_pid[contacts.slot]),
        "practice_id": decode(plan.practice_ids, slots.practice[contacts.slot]),
        "contact_date": _date(contacts.date),
        "provider": odd_case(rng, decode(vocab.PROVIDERS, contacts.kind), cfg.defects.odd_case, defects, "provider"),
        "contact_type": odd_case(rng, decode(vocab.CONTACT_TYPES, contacts.sub), cfg.defects.odd_case, defects, "contact_type"),
        "icpc": odd_icpc(rng, decode(plan.icpc_vocab, contacts.icpc), cfg.defects.odd_code_format, defects),
    }), EHR.table("contacts"))
    ehr.write("ooh_contacts", pl.DataFrame({
        "patient_id": pids.gather(slot_pid[ooh.slot]), "contact_date": _date(ooh.date),
        "contact_type": decode(vocab.CONTACT_TYPES, ooh.kind),
        "icpc": odd_icpc(rng, decode(plan.icpc_vocab, ooh.icpc), cfg.defects.odd_code_format, defects),
    }), EHR.table("ooh_contacts"))
    ehr.write("referrals", pl.DataFrame({
        "patient_id": pids.gather(slot_pid[referrals.slot]),
        "practice_id": decode(plan.practice_ids, slots.practice[referrals.slot]),
        "referral_date": _date(referrals.date), "specialism": decode(SPECIALISMS, referrals.kind),
        "icpc": odd_icpc(rng, decode(plan.icpc_vocab, referrals.icpc), cfg.defects.odd_code_format, defects),
    }), EHR.table("referrals"))

    # --- claims side.
    ins = make_insured(plan, rng, p, cond)
    person_bsn, claims_defect = claims_bsn(plan, rng, p, defects)
    c_birth = p.birth.copy()
    unknown = rng.random(len(p)) < cfg.defects.claims_birth_date_unknown
    shift = rng.random(len(p)) < cfg.defects.birth_year_conflict
    c_birth[shift] -= (rng.integers(2, 6, shift.sum()) * 365).astype(np.int32)
    c_birth[unknown] = OPEN
    c_sex = p.sex.copy()
    flip = rng.random(len(p)) < cfg.defects.sex_conflict
    c_sex[flip] = np.where(c_sex[flip] == 0, 1, 0)
    defects.update({"claims_birth_date_unknown": int(unknown.sum()), "birth_year_conflict": int(shift.sum()),
                    "sex_conflict": int(flip.sum())})
    dup = np.flatnonzero(rng.random(len(ins.person)) < cfg.defects.duplicate_insured_row)
    defects["duplicate_insured_row"] += len(dup)
    order = np.concatenate([np.arange(len(ins.person)), dup])
    other_insurer = rng.integers(0, len(plan.insurer_codes), len(dup))
    insurer = decode(plan.insurer_codes, np.concatenate([ins.insurer, other_insurer]))
    ip = ins.person[order]
    row_insurer = np.concatenate([ins.insurer, other_insurer])
    ins_ids = insured_identities(plan, ident, hh, p.gid, ip, ins.year[order], row_insurer, defects)
    ins_more = insured_optional(plan, extra, hh, given, ip, ins.year[order], defects)
    claims.write("insured", pl.DataFrame({
        "bsn": person_bsn.gather(ip), "year": ins.year[order], "insurer": insurer,
        "birth_date": _date(c_birth[ip]), "sex": decode(SEXES, c_sex[ip]), "death_date": _date(p.death[ip]),
        "wlz_institution": ins.wlz[order], **ins_ids.columns, **ins_more.columns,
    }), CLAIMS.table("insured"))
    truth.write("insured", pl.DataFrame({
        "person": p.gid[ip], "year": ins.year[order], "bsn_defect": claims_defect.gather(ip),
        "duplicate": np.arange(len(order)) >= len(ins.person), **ins_ids.truth, **ins_more.truth,
    }))
    # --- EHR patients (drawn above), with the insurer the practice holds: the latest one.
    by_person = np.lexsort((ins.year, ins.person))
    sorted_person = ins.person[by_person]
    edge = np.flatnonzero(sorted_person[1:] != sorted_person[:-1])
    first_row, last_row = by_person[np.r_[0, edge + 1]], by_person[np.r_[edge, len(by_person) - 1]]
    first_insurer = np.zeros(len(p), dtype=np.int64)
    last_insurer = np.zeros(len(p), dtype=np.int64)
    first_insurer[ins.person[first_row]] = ins.insurer[first_row]
    last_insurer[ins.person[last_row]] = ins.insurer[last_row]
    ehr_ids = ehr_identities(plan, ident, hh, p.gid, rec_person, last_insurer[rec_person],
                             first_insurer[rec_person], defects)
    ehr_more = ehr_optional(plan, extra, hh, given, rec_person, ehr_ids.truth["address_missing"], defects)
    ehr.write("patients", pl.DataFrame({
        "patient_id": pids, "bsn": bsn, "birth_date": _date(birth),
        "sex": decode(SEXES, p.sex[rec_person]), "death_date": _date(p.death[rec_person]),
        "postcode4": pl.Series(p.postcode4[rec_person]).cast(pl.String), **ehr_ids.columns,
        **ehr_more.columns,
    }), EHR.table("patients"))
    truth.write("patients", pl.DataFrame({
        "patient_id": pids, "person": p.gid[rec_person], "record": rec_record, "bsn_defect": bsn_defect,
        "birth_date_unknown": unknown_birth, "household": hh.household[rec_person],
        "birth_date_transposed": transposed, **ehr_ids.truth, **ehr_more.truth,
    }))
    lines = make_claims(plan, rng, p, ins, cond)
    cids = claim_ids(index, len(lines.person))
    defects["claim_credit_lines"] += int(np.isin(lines.kind, [CREDIT, LONE_CREDIT]).sum())
    code = decode(plan.claims_vocab, lines.code)
    is_msz = pl.Series(lines.sector == list(vocab.SECTORS).index("MSZ"))
    specialism = pl.select(pl.when(is_msz).then(code.str.split_exact(":", 1).struct.field("field_0"))).to_series()
    diagnosis = pl.select(
        pl.when(is_msz).then(code.str.split_exact(":", 1).struct.field("field_1")).otherwise(code)
    ).to_series()
    claims.write("claims", pl.DataFrame({
        "claim_id": cids, "bsn": person_bsn.gather(lines.person),
        "insurer": decode(plan.insurer_codes, lines.insurer),
        "service_date": _date(lines.date),
        "sector": odd_case(rng, decode(vocab.SECTORS, lines.sector), cfg.defects.odd_case, defects, "sector"),
        "care_type": decode(vocab.CARE_TYPES, lines.care_type), "specialism": specialism,
        "diagnosis_code": diagnosis,
        "cost_eur": _money(lines.cost_cents),
    }), CLAIMS.table("claims"))
    truth.write("claims", pl.DataFrame({
        "claim_id": cids, "person": p.gid[lines.person], "kind": decode(KINDS, lines.kind),
        "condition": decode(names, lines.condition),
    }))
    truth.write("persons", pl.DataFrame({
        "person": p.gid, "bsn": pl.Series(plan.bsns[start:stop]).cast(pl.String).str.zfill(9),
        "sex": decode(SEXES, p.sex), "birth_date": _date(p.birth), "death_date": _date(p.death),
        "in_ehr": p.in_ehr, "region": decode(np.array(REGIONS), p.region),
        "household": hh.household, "twin_of": pl.Series(hh.twin_of).replace(-1, None),
        "move_year": pl.Series(hh.move_year).replace(0, None),
        "family_name": surnames().full(hh.family), "initials": initials_strings(hh.letters, hh.n_initials),
        "given_name": pl.Series(given_names().name[given], dtype=pl.String),
    }))
    subs = np.array([s.name for c in plan.catalogue.conditions for s in c.subconditions])
    offsets = np.cumsum([0] + [len(c.subconditions) for c in plan.catalogue.conditions])[:-1]
    truth.write("conditions", pl.DataFrame({
        "person": p.gid[cond.person], "condition": names[cond.condition],
        "subcondition": subs[offsets[cond.condition] + cond.sub], "icpc": decode(plan.icpc_vocab, cond.icpc),
        "onset": _date(cond.onset), "resolved": _date(cond.resolved), "in_ehr": cond.ehr, "in_claims": cond.claims,
    }))
