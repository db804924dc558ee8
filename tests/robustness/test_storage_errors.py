"""Disk full and permission denied: a clear message, exit 10, nothing published (issue 6).

Three levels:

- the writing layer (``extracts/atomic.py``), always: an ``OSError`` and the I/O errors polars
  reports as its own types (with the OS error number in their text, as measured on a full
  tmpfs) become a :class:`~extracts.errors.StorageError` naming the output and the reason;
- the commands on a read-only output folder and a read-only working folder (Hydra's log folder),
  as an unprivileged user (root ignores permissions: the test drops to ``nobody`` with
  ``setpriv`` when it runs as root, and skips when it cannot);
- the commands on a real full disk: a tiny tmpfs mounted in a private mount namespace
  (``unshare -rm``; skipped where user namespaces are not allowed).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from command_runner import BIN, assert_clean_failure, command_env, run_command
from omegaconf import OmegaConf

from cohort.config import StudyConfig, parse_study
from cohort.output import write_study
from extracts.atomic import staging, storage_error
from extracts.codelists import load_catalogue
from extracts.errors import ExtractNotFoundError, StorageError

CONF = Path(__file__).resolve().parents[2] / "conf"
# The text polars gave for a Parquet write on a full tmpfs (polars 1.x / 2.x).
POLARS_DISK_FULL = "parquet: File out of specification: underlying IO error: No space left on device (os error 28)"


# --- the writing layer ----------------------------------------------------------------------------


def _study_config() -> StudyConfig:
    raw = OmegaConf.to_container(OmegaConf.load(CONF / "study" / "seed_study.yaml"))
    return parse_study(raw, load_catalogue(CONF / "conditions" / "seed_study.yaml"))  # type: ignore[arg-type]


def test_disk_full_inside_polars_becomes_a_storage_error_and_nothing_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: pl.DataFrame, *args: object, **kwargs: object) -> None:
        raise pl.exceptions.ComputeError(POLARS_DISK_FULL)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full_disk)
    tables = {"prevalence": pl.DataFrame({"n": [1]})}
    with pytest.raises(StorageError) as info:
        write_study(tables, tmp_path / "study", _study_config(), linked_manifest={})
    message = str(info.value)
    assert str(tmp_path / "study") in message and "No space left on device (ENOSPC)" in message
    assert "out of specification" not in message  # polars' own text is not passed on
    assert info.value.exit_code == 10
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("number", "says"),
    [(errno.ENOSPC, "disk or quota is full"), (errno.EDQUOT, "disk or quota is full"),
     (errno.EACCES, "writable by this user"), (errno.EROFS, "read-only file system")],
)
def test_os_errors_in_a_staged_output_become_storage_errors(tmp_path: Path, number: int, says: str) -> None:
    with pytest.raises(StorageError, match=says) as info, staging(tmp_path / "out", overwrite=False) as tmp:
        (tmp / "half.parquet").write_bytes(b"PAR1")
        raise OSError(number, os.strerror(number), str(tmp / "half.parquet"))
    assert str(tmp_path / "out") in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_replacement_keeps_the_previous_output(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(StorageError), staging(tmp_path / "out", overwrite=True):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert (tmp_path / "out" / "old.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_storage_error_maps_only_io_errors() -> None:
    assert storage_error(ValueError("x")) is None
    assert storage_error(pl.exceptions.ComputeError("cannot compare string with numeric")) is None
    missing = storage_error(FileNotFoundError(errno.ENOENT, "No such file", "/in/x.parquet"))
    assert isinstance(missing, ExtractNotFoundError) and "/in/x.parquet" in str(missing)
    assert isinstance(storage_error(OSError(errno.EIO, "I/O error")), StorageError)


# --- the commands, as an unprivileged user --------------------------------------------------------


@pytest.fixture(scope="module")
def unprivileged() -> list[str]:
    """A command prefix that runs as a user file permissions apply to."""
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
    """A scratch folder the unprivileged user can read (pytest's own is owner-only)."""
    folder = Path(tempfile.mkdtemp(prefix="pfl-storage-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in folder.rglob("*"):  # make everything removable again
            if path.is_dir():
                path.chmod(0o777)
        shutil.rmtree(folder)


def _world_readable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))


def test_generate_into_a_read_only_folder_exits_10_and_names_it(
    unprivileged: list[str], shared_dir: Path
) -> None:
    cwd, locked = shared_dir / "cwd", shared_dir / "locked"
    cwd.mkdir(mode=0o777)
    cwd.chmod(0o777)
    locked.mkdir(mode=0o555)
    proc = run_command("pfl-generate", "preset=tiny", f"out={locked / 'extracts'}", cwd=cwd,
                       prefix=unprivileged)
    assert_clean_failure(proc, 10, f"cannot write the output {locked / 'extracts'}: Permission denied")
    assert list(locked.iterdir()) == []


def test_study_into_a_read_only_folder_exits_10_after_no_partial_output(
    unprivileged: list[str], shared_dir: Path, tiny_linked: Path
) -> None:
    linked = shared_dir / "linked"
    shutil.copytree(tiny_linked, linked)
    _world_readable(linked)
    cwd, locked = shared_dir / "cwd", shared_dir / "locked"
    cwd.mkdir()
    cwd.chmod(0o777)
    locked.mkdir()
    locked.chmod(0o555)
    proc = run_command("pfl-study", f"linked={linked}", f"out={locked / 'study'}", cwd=cwd,
                       prefix=unprivileged)
    assert_clean_failure(proc, 10, "Permission denied")
    assert list(locked.iterdir()) == []


def test_command_in_a_read_only_working_folder_exits_10_naming_the_log_folder(
    unprivileged: list[str], shared_dir: Path
) -> None:
    # Hydra records each run's configuration under pfl-logs/ in the working folder.
    cwd = shared_dir / "cwd"
    cwd.mkdir()
    cwd.chmod(0o555)
    proc = run_command("pfl-generate", "preset=tiny", f"out={shared_dir / 'never'}", cwd=cwd,
                       prefix=unprivileged)
    assert_clean_failure(proc, 10, "pfl-logs")
    assert not (shared_dir / "never").exists()


# --- the commands on a full disk ------------------------------------------------------------------

_MOUNT_AND_RUN = """
set -u
mount -t tmpfs -o "size=$1" tmpfs "$2" || exit 99
shift 2
listing="$1"; shift
"$@"; rc=$?
ls -A "$(dirname "$listing")/disk" > "$listing"
exit $rc
"""


@pytest.fixture(scope="module")
def small_disk_runner() -> list[str]:
    """``unshare -rm sh -c`` with a script mounting a tmpfs of a given size, if allowed here."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare: cannot mount a small tmpfs")
    with tempfile.TemporaryDirectory() as probe:
        ok = subprocess.run([unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o size=8k tmpfs {probe}"],
                            check=False, capture_output=True).returncode == 0
    if not ok:
        pytest.skip("user namespaces are not allowed here: cannot mount a small tmpfs")
    return [unshare, "-rm", "sh", "-c", _MOUNT_AND_RUN, "sh"]


def _on_small_disk(runner: list[str], size: str, tmp_path: Path, command: str,
                   *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    disk = tmp_path / "disk"
    disk.mkdir()
    listing = tmp_path / "listing.txt"
    filled = [a.replace("{disk}", str(disk)) for a in args]
    proc = subprocess.run([*runner, size, str(disk), str(listing), str(BIN / command), *filled],
                          capture_output=True, text=True, cwd=tmp_path, env=command_env(),
                          check=False, timeout=300)
    assert proc.returncode != 99, proc.stderr
    return proc, listing.read_text().split()


def test_generate_on_a_full_disk_exits_10_and_leaves_nothing(
    small_disk_runner: list[str], tmp_path: Path
) -> None:
    proc, left = _on_small_disk(small_disk_runner, "1m", tmp_path, "pfl-generate", "preset=tiny",
                                "out={disk}/extracts")
    assert_clean_failure(proc, 10, "No space left on device (ENOSPC)")
    assert left == []


def test_study_on_a_full_disk_exits_10_and_leaves_nothing(
    small_disk_runner: list[str], tmp_path: Path, tiny_linked: Path
) -> None:
    proc, left = _on_small_disk(small_disk_runner, "8k", tmp_path, "pfl-study",
                                f"linked={tiny_linked}", "out={disk}/study")
    assert_clean_failure(proc, 10, f"cannot write the output {tmp_path / 'disk' / 'study'}")
    assert "No space left on device" in proc.stderr
    assert left == []
