"""``pfl-audit`` on a full disk and a read-only folder: exit 10, the verdict printed, no report file.

Issue 10, item 11: a full disk used to exit 1 ("fails the audit") leaving a partial report, a
read-only folder exit 4 ("unreadable file"). The report is now written to a temporary name and
renamed (:mod:`audit.output`); a storage failure has its own code, 10 ("storage refused"). Three
levels, as in ``test_storage_errors.py``: an injected ``ENOSPC`` in the middle of the write, a
read-only folder as an unprivileged user, a real full tmpfs in a private mount namespace.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from command_runner import BIN, assert_clean_failure, command_env, run_command
from command_runner import audit_in_process as audit

from audit.__main__ import EXIT_CODES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "releases"




@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A release that fails the audit with many findings (a report of several kB)."""
    shutil.copytree(FIXTURES / "threshold5" / "release", tmp_path / "release")
    return tmp_path / "release"


def test_storage_refused_has_its_own_exit_code():
    assert EXIT_CODES[10][0] == "storage refused" and EXIT_CODES[1][0] == "error"


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_disk_full_while_writing_the_report_exits_10_and_leaves_no_partial_file(
    release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, number: int
) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    previous = '{"format": "pfl-audit-report/1", "passed": false}\n'  # an earlier report: may be replaced
    (out / "audit.json").write_text(previous)
    real_write = os.write
    calls = []

    def half_then_full(fd: int, data: bytes) -> int:
        calls.append(fd)
        if len(calls) == 1:  # the first block lands, then the disk is full
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(os, "write", half_then_full)
    code, stdout, stderr = audit(f"release={release}", f"report={out / 'audit.json'}")
    monkeypatch.undo()
    assert len(calls) == 2, "the report was not written through os.write in blocks"
    assert code == 10, stderr
    assert "verdict: FAIL" in stdout  # the verdict is printed; only the file is missing
    assert f"cannot write the audit report {out / 'audit.json'}: {os.strerror(number)}" in stderr
    assert "no report was written" in stderr and "Traceback" not in stdout + stderr
    assert sorted(p.name for p in out.iterdir()) == ["audit.json"]  # no partial file beside it
    assert (out / "audit.json").read_text() == previous  # left as it was


def test_report_into_a_missing_folder_exits_10(release: Path, tmp_path: Path) -> None:
    code, _, stderr = audit(f"release={release}", f"report={tmp_path / 'nowhere' / 'audit.json'}")
    assert code == 10 and "folder does not exist" in stderr


# --- a read-only folder, as a user permissions apply to -------------------------------------------


@pytest.fixture(scope="module")
def unprivileged() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*prefix, "true"], check=False).returncode != 0:
        pytest.skip("cannot drop privileges with setpriv")
    return prefix


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="pfl-audit-storage-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in folder.rglob("*"):
            if path.is_dir():
                path.chmod(0o777)
        shutil.rmtree(folder)


def test_report_into_a_read_only_folder_exits_10_and_writes_nothing(
    unprivileged: list[str], shared_dir: Path
) -> None:
    release = shared_dir / "release"
    shutil.copytree(FIXTURES / "threshold5" / "release", release)
    for path in [release, *release.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    cwd, locked = shared_dir / "cwd", shared_dir / "locked"
    cwd.mkdir()
    cwd.chmod(0o777)
    locked.mkdir()
    locked.chmod(0o555)
    proc = run_command("pfl-audit", f"release={release}", f"report={locked / 'audit.json'}", cwd=cwd,
                       prefix=unprivileged)
    assert_clean_failure(proc, 10, f"cannot write the audit report {locked / 'audit.json'}: Permission denied")
    assert "verdict: FAIL" in proc.stdout
    assert list(locked.iterdir()) == []


# --- a real full disk -----------------------------------------------------------------------------

_MOUNT_AND_RUN = """
set -u
mount -t tmpfs -o "size=$1" tmpfs "$2" || exit 99
disk="$2"; shift 2
"$@"; rc=$?
ls -A "$disk" > "$disk.listing"
exit $rc
"""


def test_report_on_a_full_disk_exits_10_and_leaves_nothing(release: Path, tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    disk = tmp_path / "disk"
    disk.mkdir()
    if unshare is None or subprocess.run([unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o size=4k tmpfs {disk}"],
                                         check=False, capture_output=True).returncode != 0:
        pytest.skip("user namespaces are not allowed here: cannot mount a small tmpfs")
    # The failing release's report is larger than the 4 kB disk.
    proc = subprocess.run([unshare, "-rm", "sh", "-c", _MOUNT_AND_RUN, "sh", "4k", str(disk),
                           str(BIN / "pfl-audit"), f"release={release}", f"report={disk / 'audit.json'}"],
                          capture_output=True, text=True, cwd=tmp_path, env=command_env(), check=False,
                          timeout=300)
    assert proc.returncode != 99, proc.stderr
    assert_clean_failure(proc, 10, "No space left on device (ENOSPC)")
    assert (tmp_path / "disk.listing").read_text().split() == []


def test_the_storage_error_is_an_os_error_with_its_number_for_the_engine_jobs(tmp_path: Path) -> None:
    # The demo job writes the audit report through the engine's guard, which maps OS errors by
    # number to exit 10: the auditor's error must carry the number.
    from audit.errors import ReportWriteError
    from audit.output import write_atomically
    from extracts.atomic import storage_error

    with pytest.raises(ReportWriteError) as info:
        write_atomically(tmp_path / "missing" / "audit.json", "{}")
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOENT
    assert str(info.value).startswith(f"cannot write the audit report {tmp_path / 'missing' / 'audit.json'}")
    assert storage_error(info.value) is not None
