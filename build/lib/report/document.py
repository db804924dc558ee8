"""The report as one self-contained HTML file, and writing it complete or not at all.

The page holds its CSS and its SVG figures inline: no script, no font, image or style sheet from
elsewhere, so it opens offline and the same release always gives the same bytes (no time of
rendering is printed). It is made from what :func:`report.release.read_release` read and checked,
and from nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from report import sections
from report.errors import (
    AuditFailedError,
    OutputExistsError,
    OutputRefusedError,
    ReleaseFormatError,
    SettingsError,
)
from report.gate import AuditOutcome, audit_outcome
from report.markup import table, td_text, th
from report.release import HIDDEN_STATUSES, Release, read_release
from report.values import STATUS_MEANING

__all__ = ["CSP", "ReportResult", "render", "write_report"]

# The page may load nothing: no script, font, image or style sheet from anywhere (its own inline
# CSS and data: images excepted). A browser blocks and logs anything else.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1b1b1b; background: #ffffff; margin: 0; line-height: 1.45; }
main { max-width: 1000px; margin: 0 auto; padding: 1.5rem 1.5rem 4rem; }
h1 { font-size: 1.7rem; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2.5rem 0 .75rem; border-bottom: 2px solid #2166ac; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
.lead { color: #444; margin: 0 0 1rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 1rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.box { border: 1px solid #c8d6e5; background: #f4f8fb; padding: .75rem 1rem; margin: 1rem 0; }
nav ol { columns: 2; margin: .25rem 0; }
figure { margin: 1.5rem 0; page-break-inside: avoid; }
figcaption { font-weight: 600; margin-bottom: .4rem; }
.fig-no { color: #2166ac; }
svg.chart { max-width: 100%; height: auto; display: block; }
svg.chart text { font-family: inherit; font-size: 12px; fill: #1b1b1b; }
svg.chart text.tick, svg.chart text.axis { font-size: 11px; fill: #555555; }
svg.chart text.hidden-label { font-size: 11px; fill: #444444; font-style: italic; }
.note { font-size: .85rem; color: #555; margin: .3rem 0 0; }
.table-wrap { overflow-x: auto; margin: .75rem 0 1.25rem; }
table { border-collapse: collapse; font-size: .85rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #d5d5d5; padding: .2rem .45rem; vertical-align: top; }
thead th { background: #eef3f8; text-align: center; }
tbody th { text-align: left; font-weight: normal; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.hidden { color: #444; font-style: italic; background: #fafafa; min-width: 7em; font-size: .92em; }
td.absent { color: #999; text-align: center; }
td.stratum { white-space: nowrap; }
.marker { display: inline-block; width: 1.2em; height: .8em; margin-right: .35em;
          vertical-align: -.05em; border: 1px dashed #6b6b6b;
          background: repeating-linear-gradient(45deg, #ffffff 0 2px, #8a8a8a 2px 3px); }
details { margin: .5rem 0 1rem; }
summary { cursor: pointer; color: #2166ac; }
p.withheld { border-left: 4px solid #b35806; padding-left: .6rem; }
code { font-size: .9em; }
footer { color: #555; font-size: .85rem; margin-top: 3rem; border-top: 1px solid #ddd; padding-top: .5rem; }
@media print { details { display: block; } summary { display: none; } h2 { page-break-after: avoid; } }
.audit-failed { position: sticky; top: 0; z-index: 10; background: #b30000; color: #ffffff;
                border: 4px solid #7a0000; padding: .75rem 1rem; margin: 0 0 1rem; }
.audit-failed strong { display: block; font-size: 1.4rem; letter-spacing: .02em; }
.audit-failed p { margin: .3rem 0 0; }
@media print { .audit-failed { position: fixed; top: 0; left: 0; right: 0; margin: 0; }
               body.fails-audit main { padding-top: 7rem; } }
"""

BANNER = "THIS RELEASE FAILS THE INDEPENDENT AUDIT \u2014 do not publish"

_POLICY_MEANING = {
    "threshold": "T: a count of 1 to T\u22121 persons is hidden",
    "margin": "protection margin: a hidden count must not be derivable to within this share of itself",
    "publish_zeros": "counts of 0 are shown",
    "rounding": "rounding of shown counts",
    "p_percent": "p% rule for magnitudes (not used by these tables)",
    "dominance_n": "(n, k) dominance rule for magnitudes: n",
    "dominance_k": "(n, k) dominance rule for magnitudes: k (%)",
}


@dataclass(frozen=True)
class ReportResult:
    """What was written: the file, its figures, the hidden and withheld values, the audit's verdict."""

    out: Path
    release_id: str
    figures: list[str]
    hidden: dict[str, int] = field(default_factory=dict)
    withheld: list[str] = field(default_factory=list)
    audit: AuditOutcome = field(default_factory=lambda: AuditOutcome(True))


def _text(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _header(release: Release) -> str:
    m, study = release.manifest, release.study
    engine = m.get("engine", {}) if isinstance(m.get("engine"), dict) else {}
    keys = m.get("keys", {}) if isinstance(m.get("keys"), dict) else {}
    ledger = m.get("ledger", {}) if isinstance(m.get("ledger"), dict) else {}
    policy = release.policy
    facts = [
        ("Study", _text(study.get("name"))),
        ("Reference years", _text(study.get("reference_years"))),
        ("Conditions", str(len(study.get("conditions", [])))),
        ("Strata", _text(study.get("strata") or None)),
        ("Release", _text(m.get("release_id"))),
        ("Released", _text(m.get("created"))),
        ("Engine", f"{_text(engine.get('name'))} {_text(engine.get('version'))}"),
        ("Project", f"{_text(keys.get('project'))} (key id {_text(keys.get('project_key_id'))})"),
        ("Disclosure policy", (f"threshold T = {_text(policy.get('threshold'))}, protection margin "
                              f"{_text(policy.get('margin'))}, zeros shown: {_text(policy.get('publish_zeros'))}")),
        ("Checked against", f"{_text(ledger.get('earlier_releases', 0))} earlier release(s) of the same population"),
    ]
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    return (f"<header><h1>Patient flow: care use per condition and discipline</h1>"
            f'<p class="lead">{escape(_text(m.get("status")))}; study '
            f"<strong>{escape(_text(study.get('name')))}</strong>.</p>"
            f'<dl class="facts">{rows}</dl></header>')


def _reading(release: Release) -> str:
    items = "".join(f"<li><strong>hidden ({escape(s.replace('-', ' '))})</strong>: {escape(t)}</li>"
                    for s, t in STATUS_MEANING.items())
    files = len(release.manifest.get("files", {}))
    return ('<section class="box" aria-label="How to read this report">'
            "<p>This report is made from the release folder alone: its manifest and the "
            f"{files} files it lists, each checked against the manifest's SHA-256 before use. It "
            "shows aggregates that passed disclosure control and nothing else. A value the release "
            "hides is drawn as a hatched marker "
            '<span class="marker" aria-hidden="true"></span>with the release\'s reason, never as a '
            f"number:</p><ul>{items}</ul>"
            "<p>Percentages are of persons (at least one contact, referral or diagnosis), computed "
            "by the engine from unrounded counts and printed to one decimal.</p></section>")


def _linkage(release: Release) -> str:
    return ("<p>This release carries no linkage summary: the release format "
            f"(<code>{escape(_text(release.manifest.get('format')))}</code>) defines none, and the "
            "report shows only what the release holds. The linkage report stays in the research "
            "environment with the data steward. What this release does publish about linkage is "
            "the attrition step <em>X1 not linkable</em> (persons of a practice without a valid "
            "link to the claims in the year), in the attrition tables.</p>")


def _policy(release: Release) -> str:
    policy = release.policy
    source = release.manifest.get("policy_source", {})
    steward = source.get("steward", {}) if isinstance(source, dict) else {}
    overrides = source.get("study_overrides", {}) if isinstance(source, dict) else {}
    head = [[th("Setting", scope="col"), th("Value", scope="col"), th("Steward", scope="col"),
             th("Study (stricter only)", scope="col"), th("Meaning", scope="col")]]
    body = [[th(k), td_text(_text(v)), td_text(_text(steward.get(k, "")) if k in steward else "\u2014"),
             td_text(_text(overrides[k]) if k in overrides else "\u2014"),
             td_text(_POLICY_MEANING.get(k, ""))] for k, v in policy.items()]
    return ("<p>The policy the release was made under: the data steward's, made stricter by the "
            "study where it asks (a study can never loosen it). Rules: "
            "<code>shared/spec/disclosure.md</code>.</p>"
            + table("Disclosure policy", head, body))


def _banner(audit: AuditOutcome | None) -> str:
    """The warning at the top of a page made of a release that fails the audit (none otherwise)."""
    if audit is None or audit.passed:
        return ""
    return ('<div class="audit-failed" role="alert" id="audit-failed">'
            f"<strong>{escape(BANNER)}</strong>"
            f"<p>The independent audit (<code>pfl-audit</code>) fails: {escape(audit.summary())}. "
            "This report was made only because it was asked for (<code>show_failed=true</code>); "
            "run <code>pfl-audit</code> on the release for the findings.</p></div>")


def render(release: Release, figures: sections.Figures | None = None, *,
           audit: AuditOutcome | None = None) -> str:
    """The report of a release as one HTML document (text).

    Args:
        release: The release as read and checked.
        figures: Collects the figures' titles in order (a fresh counter when omitted).
        audit: The independent audit's outcome; a failing one puts :data:`BANNER` at the top of
            the page (fixed on every printed page) and in its title.
    """
    figures = figures if figures is not None else sections.Figures()
    parts: list[tuple[str, str, str]] = []  # (anchor, heading, html)
    parts.append(("care-use", "Care use per condition and discipline", sections.care_use(release, figures)))
    parts.append(("change", "Change in percentage points", sections.change_table(release)))
    parts.append(("prevalence", "Prevalence", sections.prevalence(release, figures)))
    parts.append(("referrals", "Referrals to medical specialist care", sections.referrals(release, figures)))
    parts.append(("attrition", "Study population and exclusions (attrition)", sections.attrition(release)))
    parts.append(("top", "Most frequent health problems per discipline", sections.top(release)))
    parts.append(("acsc", "Ambulatory-care-sensitive admissions (ACSC)", sections.acsc(release)))
    other = sections.other_tables(release)
    if other:
        parts.append(("other", "Other tables", other))
    parts.append(("withheld", "Withheld tables and rows", sections.withheld(release)))
    parts.append(("linkage", "Linkage summary", _linkage(release)))
    parts.append(("policy", "Disclosure policy", _policy(release)))
    nav = "".join(f'<li><a href="#{a}">{escape(h)}</a></li>' for a, h, _ in parts)
    body = "".join(f'<section id="{a}"><h2>{escape(h)}</h2>{html}</section>' for a, h, html in parts)
    title = f"Patient flow report: {_text(release.study.get('name'))}, release {_text(release.manifest.get('release_id'))}"
    banner = _banner(audit)
    body_class = ' class="fails-audit"' if banner else ""
    if banner:
        title = f"{BANNER}: {title}"
    footer = ("<footer>Made by <code>pfl-report</code> from release "
              f"<code>{escape(_text(release.manifest.get('release_id')))}</code> alone. The page "
              "needs no network and runs no script. Check the release independently with "
              "<code>pfl-audit</code>.</footer>")
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
            f"<body{body_class}><main>{banner}{_header(release)}{_reading(release)}"
            f'<nav aria-label="Contents"><h2>Contents</h2><ol>{nav}</ol></nav>{body}{footer}'
            "</main></body></html>\n")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def write_report(release: Path, out: Path, *, overwrite: bool = False,
                 show_failed: bool = False) -> ReportResult:
    """Read and check a release, audit it, render its report and write it complete or not at all.

    The release is audited independently (:func:`report.gate.audit_outcome`, ``pfl-audit``
    without a ledger). A release that fails is refused unless ``show_failed``; then the page
    carries :data:`BANNER` at its top. The HTML is written to ``.<name>.partial`` beside ``out``
    and renamed into place; on any failure the partial file is removed.

    Raises:
        AuditFailedError: the release fails the independent audit and ``show_failed`` is false
            (exit 11).
        SettingsError: ``out`` is a folder, or lies inside the release folder (exit 2).
        OutputExistsError: ``out`` exists and ``overwrite`` is false (exit 9).
        OutputRefusedError: the file system refused the file (exit 10).
        ReleaseNotFoundError, ReleaseTamperedError, ReleaseFormatError: see
            :func:`report.release.read_release`.
    """
    release, out = Path(release), Path(out)
    if out.is_dir():
        msg = f"out={out} is a folder; name the HTML file to write"
        raise SettingsError(msg)
    if _inside(out, release):
        msg = (f"out={out} lies inside the release folder; write the report elsewhere (a file in "
               "the release would not be covered by its manifest)")
        raise SettingsError(msg)
    if out.exists() and not overwrite:
        msg = f"output file exists: {out} (pass overwrite=true to replace it)"
        raise OutputExistsError(msg)
    try:
        checked = read_release(release)
    except OSError as exc:  # permission denied or an I/O error while reading a listed file
        msg = f"cannot read the release {release}: {os.strerror(exc.errno or errno.EIO)}"
        raise ReleaseFormatError(msg) from None
    audit = audit_outcome(release)
    if not audit.passed and not show_failed:
        msg = (f"the release {release} fails the independent audit ({audit.summary(3)}); no report was "
               f"written. Run pfl-audit release={release} for the findings; show_failed=true makes the "
               "report anyway, under a warning banner, never for publication")
        raise AuditFailedError(msg)
    figures = sections.Figures()
    html = render(checked, figures, audit=audit)
    partial = out.parent / f".{out.name}.partial"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(html, encoding="utf-8")
        os.replace(partial, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        msg = (f"cannot write the report {out}: {os.strerror(exc.errno or errno.EIO)}; "
               "nothing was written")
        raise OutputRefusedError(msg) from None
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    hidden: Counter[str] = Counter()
    for tbl in checked.tables.values():
        for status in tbl.values.values():
            counts = tbl.frame[status].value_counts()
            for value, n in counts.iter_rows():
                if value in HIDDEN_STATUSES:
                    hidden[value] += n
    return ReportResult(out, str(checked.manifest.get("release_id", "")), figures.titles,
                        dict(hidden), sorted(checked.withheld), audit)
