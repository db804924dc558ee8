"""The role guides work as written (issue 6): their shell blocks run, in order, on a fresh folder.

Each guide's fenced ``bash`` blocks are joined into one script and run with ``bash -euo pipefail``
from the repository's folder, as a newcomer would paste them, with ``WORK`` pointing at an empty
temporary folder (the guides default it to a folder in ``$HOME``). Any failing command fails the
test. Blocks fenced as ``text`` or ``yaml`` are illustrations and are not run. The links between
the documents are checked too.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDES = {
    "guide-data-steward.md": ["release/manifest.json", "release.audit.json", "report.html", "linked/linkage_report.json"],
    "guide-researcher.md": ["diabetes_copd/care_use.parquet", "diabetes_copd/costs.parquet",
                            "diabetes_by_age/prevalence.parquet",
                            "dm_incidence/incidence.parquet", "dm_incidence/costs.parquet", "dm_incidence_release/manifest.json",
                            "copd_index/contact_bands.parquet", "heart_failure/care_use.parquet",
                            "my-config/study/diabetes_copd_by_sex_v2.yaml"],
    "guide-auditor.md": ["audit.json", "audit-ledger.json", "audit-tampered.json"],
    "guide-cluster.md": ["linked/linkage_report.json", "study-dask/prevalence.parquet",
                         "study-spark/prevalence.parquet"],
}


def shell_blocks(markdown: str) -> list[str]:
    """The ``bash`` fenced blocks of a markdown text, in order."""
    return re.findall(r"^```bash\n(.*?)^```", markdown, re.DOTALL | re.MULTILINE)


def test_shell_blocks_are_found_and_illustrations_are_not() -> None:
    text = "a\n```bash\necho one\n```\n```text\nnot run\n```\n```bash\necho two\n```\n"
    assert shell_blocks(text) == ["echo one\n", "echo two\n"]


@pytest.mark.slow
@pytest.mark.parametrize(("guide", "outputs"), GUIDES.items(), ids=list(GUIDES))
def test_guide_runs_as_written(guide: str, outputs: list[str], tmp_path: Path) -> None:
    blocks = shell_blocks((DOCS / guide).read_text())
    assert len(blocks) >= 4, f"{guide}: expected a walk-through"
    script = tmp_path / "guide.sh"
    script.write_text("\n".join(blocks))
    work = tmp_path / "work"
    env = {k: v for k, v in os.environ.items() if k not in ("PFL_DEBUG", "HYDRA_FULL_ERROR", "WORK")}
    proc = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=ROOT, capture_output=True,
                          text=True, env={**env, "WORK": str(work), "COLUMNS": "120"}, check=False,
                          timeout=900)
    printed = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{guide} stopped (exit {proc.returncode}):\n{printed[-3000:]}"
    assert "Traceback" not in printed
    for output in outputs:
        assert (work / output).exists(), f"{guide}: {output} was not made"


# A reader that may stop before the writer is done (head, grep -q/-m, sed q): under pipefail
# the writer can then die of a broken pipe (exit 32 or 141), so the step fails by timing alone.
_EARLY_READER = re.compile(r"\|\s*(?:head\b|grep\s+-\w*[qm]|sed\s+[^|]*\bq\b|awk\s+[^|]*\bexit\b)")


@pytest.mark.parametrize("guide", GUIDES, ids=list(GUIDES))
def test_no_guide_step_depends_on_timing(guide: str) -> None:
    steps = [line for block in shell_blocks((DOCS / guide).read_text()) for line in block.splitlines()
             if _EARLY_READER.search(line)]
    assert steps == [], f"{guide}: a pipe into a reader that may stop early fails under pipefail by timing"


def test_early_reader_pattern_catches_what_breaks_pipes() -> None:
    assert _EARLY_READER.search('python -m json.tool f | head -25')
    assert _EARLY_READER.search('cat f | grep -q x')
    assert not _EARLY_READER.search('head -20 "$WORK/release/summary.md"')
    assert not _EARLY_READER.search('python -m json.tool f | sed -n 1,25p')


def test_links_between_the_documents_resolve() -> None:
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_docs_never_tell_a_user_to_edit_the_packaged_configuration() -> None:
    """One documented way to bring a catalogue or study: a config folder of one's own (issue 10.15)."""
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    instruction = re.compile(r"\b(steward|researcher|you)\s+(replaces?|edits?|changes?)\s+(them|it)\b|\bin that file\b"
                             r"|\bedit\s+`?conf/", re.IGNORECASE)
    told = [f"{page.name}: {m.group(0)}" for page in pages
            for m in instruction.finditer(page.read_text().replace("\n", " "))]
    assert told == []
    readme = (ROOT / "README.md").read_text()
    assert "--config-dir <dir> conditions=<name>" in readme
