"""``pfl-report`` runs the independent audit first (issue 10, item 4).

A release that fails the audit (a threshold below the floor, an un-hidden count with consistent
checksums, a CSV that differs from its Parquet file) gets no report: exit 11, a message that says
why and points to ``pfl-audit``, nothing written. With ``show_failed=true`` it gets one, under a
red banner at the top of the page, and hidden values stay hidden.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
import pytest
from release_builder import rewrite_checksums, small_release
from report_dom import DIGIT, parse

from report import AuditFailedError, write_report
from report.__main__ import EXIT_CODES, run
from report.document import BANNER


def _threshold_5(release: Path) -> None:
    manifest = json.loads((release / "manifest.json").read_text())
    manifest["policy"]["threshold"] = 5
    (release / "manifest.json").write_text(json.dumps(manifest))


def _unhidden_count(release: Path) -> None:
    # A referral count of 5 shown (status emptied) in both files, checksums redone: only an
    # audit of the content can tell.
    frame = pl.read_parquet(release / "referrals.parquet")
    hidden = pl.col("n_status") == "suppressed"
    frame = frame.with_columns(pl.when(hidden).then(5).otherwise(pl.col("n")).alias("n"),
                               pl.when(hidden).then(pl.lit("")).otherwise(pl.col("n_status")).alias("n_status"))
    frame.write_parquet(release / "referrals.parquet")
    frame.write_csv(release / "referrals.csv")
    rewrite_checksums(release)


def _csv_differs(release: Path) -> None:
    # The CSV shows what the Parquet file (which the report draws) hides.
    frame = pl.read_parquet(release / "referrals.parquet")
    frame.with_columns(pl.col("n").fill_null(15), pl.lit("").alias("n_status")).write_csv(release / "referrals.csv")
    rewrite_checksums(release)


FAILING = [pytest.param(_threshold_5, "policy", id="threshold-5"),
           pytest.param(_unhidden_count, "visible-count", id="unhidden-count"),
           pytest.param(_csv_differs, "csv-parquet", id="csv-differs-from-parquet")]


def _cli(tmp_path: Path, release: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "out" / "report.html"
    return run([f"release={release}", f"out={out}", *extra]), out


def test_refusal_has_its_documented_exit_code() -> None:
    assert EXIT_CODES[11][0] == "release refused" and "show_failed=true" in EXIT_CODES[11][1]
    assert AuditFailedError.exit_code == 11


@pytest.mark.parametrize(("tamper", "check"), FAILING)
def test_a_release_that_fails_the_audit_gets_no_report(tmp_path: Path, tamper, check: str,
                                                        capsys: pytest.CaptureFixture) -> None:
    release = small_release(tmp_path / "release")
    tamper(release)
    code, out = _cli(tmp_path, release)
    err = capsys.readouterr().err
    assert code == 11, err
    assert "fails the independent audit" in err and f"pfl-audit release={release}" in err
    assert check in err and "show_failed=true" in err and "Traceback" not in err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize(("tamper", "check"), FAILING)
def test_show_failed_puts_the_banner_at_the_top_and_still_hides_hidden_values(
        tmp_path: Path, tamper, check: str, capsys: pytest.CaptureFixture) -> None:
    release = small_release(tmp_path / "release")
    tamper(release)
    code, out = _cli(tmp_path, release, "show_failed=true")
    err = capsys.readouterr().err
    assert code == 0 and "FAILS THE INDEPENDENT AUDIT" in err
    html = out.read_text()
    page = parse(html)
    main = page.by_tag("main")[0]
    first = next(c for c in main.children if not isinstance(c, str))
    assert first.has_class("audit-failed") and first.attrs.get("role") == "alert"
    assert BANNER in first.text and check in first.text and "pfl-audit" in first.text
    assert BANNER == "THIS RELEASE FAILS THE INDEPENDENT AUDIT \u2014 do not publish"
    assert page.by_tag("title")[0].text.startswith(BANNER)
    assert "body.fails-audit" in html and ".audit-failed { position: sticky; top: 0;" in html
    assert "background: #b30000; color: #ffffff" in html  # red, white text
    hidden = page.find_all(lambda e: e.tag == "td" and e.attrs.get("data-status") in ("suppressed", "below-threshold"))
    assert hidden and not any(DIGIT.search(e.text) for e in hidden)


def test_a_release_that_passes_has_no_banner_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    release = small_release(tmp_path / "release")
    began = time.perf_counter()
    result = write_report(release, tmp_path / "report.html")
    assert time.perf_counter() - began < 30
    assert result.audit.passed and result.audit.failures == ()
    html = (tmp_path / "report.html").read_text()
    assert "audit-failed" not in html.split("</style>", 1)[1] and BANNER not in html
    assert run([f"release={release}", f"out={tmp_path / 'again.html'}"]) == 0
    assert "passes the independent audit" in capsys.readouterr().err


def test_write_report_refuses_a_failing_release_unless_asked(tmp_path: Path) -> None:
    release = small_release(tmp_path / "release")
    _threshold_5(release)
    with pytest.raises(AuditFailedError, match="fails the independent audit"):
        write_report(release, tmp_path / "report.html")
    result = write_report(release, tmp_path / "report.html", show_failed=True)
    assert not result.audit.passed and any("policy" in f for f in result.audit.failures)
