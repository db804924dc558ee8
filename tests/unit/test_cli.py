"""``guarded``: every way a command can fail becomes a message and an exit code, never a traceback."""

from __future__ import annotations

import errno

import polars as pl
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from extracts.cli import EXIT_CODES, guarded, require_settings, text_setting
from extracts.errors import ConfigError, ContractError, OutputExistsError

SECRET = "123456782"  # stands for a value from the data


class PanicException(BaseException):
    """Like pyo3's: a Rust panic inside polars or pyarrow surfaces as a BaseException."""


def _exit(fn: object, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        guarded(fn)  # type: ignore[arg-type]
    captured = capsys.readouterr()
    return int(info.value.code), captured.out + captured.err


def _raise(exc: BaseException) -> object:
    def fn() -> None:
        raise exc

    return fn


@pytest.mark.parametrize(
    ("exc", "code", "says"),
    [
        (ConfigError("missing setting(s): out"), 2, "missing setting(s): out"),
        (ContractError(["a.csv, column 'x': missing"]), 5, "a.csv, column 'x': missing"),
        (OutputExistsError("output folder exists: /o"), 9, "output folder exists: /o"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (ConfigCompositionException("Could not override 'nosuch'."), 2, "configuration: Could not override"),
        (OSError(errno.ENOSPC, "No space left on device", "/out/x"), 10, "disk or quota is full"),
        (pl.exceptions.ComputeError("underlying IO error: Permission denied (os error 13)"), 10,
         "Permission denied (EACCES)"),
    ],
    ids=["config", "contract", "output exists", "interrupted", "hydra", "disk full", "polars io"],
)
def test_user_errors_get_their_code_and_a_message(
    exc: BaseException, code: int, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, printed = _exit(_raise(exc), capsys)
    assert (got, says in printed, "Traceback" in printed) == (code, True, False), printed
    assert got in EXIT_CODES


@pytest.mark.parametrize("exc", [ValueError(f"bad row {SECRET}"), PanicException(f"panicked at {SECRET}")],
                         ids=["exception", "rust panic"])
def test_internal_errors_exit_70_and_withhold_their_message(
    exc: BaseException, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PFL_DEBUG", raising=False)
    code, printed = _exit(_raise(exc), capsys)
    assert code == 70
    assert type(exc).__name__ in printed and SECRET not in printed and "Traceback" not in printed


def test_pfl_debug_shows_an_internal_error_to_developers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFL_DEBUG", "1")
    with pytest.raises(ValueError, match="bad row"):
        guarded(_raise(ValueError("bad row")))  # type: ignore[arg-type]


def test_a_command_that_exits_itself_keeps_its_code() -> None:
    with pytest.raises(SystemExit) as info:
        guarded(_raise(SystemExit(3)))  # type: ignore[arg-type]
    assert info.value.code == 3


def test_require_settings_names_every_missing_setting() -> None:
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"out": "???", "content": {"ehr": None, "claims": "/c"}})
    with pytest.raises(ConfigError, match=r"missing setting\(s\): out, content.ehr \("):
        require_settings(cfg, "out", "content.ehr", "content.claims")


@pytest.mark.parametrize("value", ["maybe", "no", "yes", 1, 0, "", None])
def test_a_yes_no_setting_that_is_not_true_or_false_is_a_configuration_error(value: object) -> None:
    # bool("maybe") is True: read loosely, overwrite=maybe would replace an output.
    from omegaconf import OmegaConf

    from extracts.cli import flag

    with pytest.raises(ConfigError, match="overwrite: expected true or false"):
        flag(OmegaConf.create({"overwrite": value}), "overwrite")


def test_a_yes_no_setting_reads_true_and_false() -> None:
    from omegaconf import OmegaConf

    from extracts.cli import flag

    assert flag(OmegaConf.create({"overwrite": True}), "overwrite") is True
    assert flag(OmegaConf.create({"overwrite": False}), "overwrite") is False


def test_a_ctrl_c_that_surfaces_as_a_hydra_error_is_an_interruption(capsys, monkeypatch) -> None:
    # Seen in ./run tests: SIGINT while Hydra renders --help left an OmegaConf node half-updated,
    # and the next operation's error was reported as a configuration error (exit 2).
    import os
    import signal
    import time

    import extracts.cli

    monkeypatch.setattr(extracts.cli, "_SIGINT_SEEN", False)
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def body() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            msg = "'NoneType' object has no attribute '_invalidate_flags_cache'"
            raise ConfigCompositionException(msg) from None

    try:
        code, printed = _exit(body, capsys)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130
    assert "interrupted" in printed and "configuration" not in printed


@pytest.mark.parametrize(("given", "expected"), [("1a2b3c4d", "1a2b3c4d"), (53757541, "53757541"),
                                                 (537541, "00537541"), (None, None)])
def test_an_all_digit_key_id_that_hydra_reads_as_a_number_is_the_id_again(given, expected) -> None:
    # Seen in a clean-clone run: network key id 53757541 reached pfl-ttp as an int, exit 7.
    from pseudonymisation.keys import key_id_text as _key_id

    assert _key_id(given) == expected


def test_a_key_id_hydra_read_as_a_float_is_refused() -> None:
    from pseudonymisation.keys import key_id_text as _key_id

    with pytest.raises(ConfigError, match="quoted"):
        _key_id(1.2345e71)


@pytest.mark.parametrize("value", [7, 2023, 1.5, True])
def test_a_project_id_hydra_read_as_a_number_or_yes_no_is_refused(value: object) -> None:
    # project=1e3 reaches the command as the number 1000.0: the TTP would make pseudonyms for a
    # project "1000.0" that no one asked for. Only text is a project id; the message says how to quote.
    cfg = OmegaConf.create({"project": value})
    with pytest.raises(ConfigError, match="project: expected text") as caught:
        text_setting(cfg, "project")
    assert "quote" in str(caught.value)


def test_a_project_id_given_as_text_is_read_as_given() -> None:
    assert text_setting(OmegaConf.create({"project": "007"}), "project") == "007"
