"""A remote Dask scheduler: encrypted and authenticated (tls://) unless the steward opts out.

Person-level pseudonymised data cross the network between the driver and a remote cluster, and a
Dask scheduler runs any client's code on its workers: a plain ``tcp://`` address is refused (exit
2) unless ``executor.allow_plaintext=true``; a ``tls://`` address takes the cluster's certificate
files by path (``executor.tls_ca_file``, ``tls_cert``, ``tls_key``), never their contents.
"""

from __future__ import annotations

import datetime
import re
import time
from pathlib import Path

import pytest
from partition_tasks import square


def _certificate_files(folder: Path) -> dict[str, Path]:
    """A self-signed certificate and its key (the cluster's own CA, as Security.temporary makes)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pfl-test-cluster")])
    now = datetime.datetime.now(tz=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    files = {"cert": folder / "cluster.pem", "key": folder / "cluster.key"}
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    files["key"].chmod(0o600)
    return files


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "tcp://203.0.113.9:8786", "ucx://10.0.0.1:13337"])
def test_a_plaintext_scheduler_address_is_refused_without_an_explicit_opt_in(address: str) -> None:
    pytest.importorskip("distributed")
    from execution import open_executor

    began = time.monotonic()
    with pytest.raises(ValueError, match=re.escape("executor.allow_plaintext=true")) as raised:
        open_executor("dask", address=address)
    said = str(raised.value)
    assert "unencrypted" in said and "tls://" in said and "executor.tls_ca_file" in said
    assert time.monotonic() - began < 5  # refused before any connection is tried


def test_allow_plaintext_must_be_true_or_false_and_tls_files_need_a_tls_address(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from execution import open_executor

    with pytest.raises(ValueError, match="executor.allow_plaintext must be true or false"):
        open_executor("dask", address="tcp://127.0.0.1:1", allow_plaintext="yes")
    files = _certificate_files(tmp_path)
    with pytest.raises(ValueError, match=re.escape("need a tls:// address")):
        open_executor("dask", address="tcp://127.0.0.1:1", allow_plaintext=True, tls_ca_file=str(files["cert"]))


def test_the_remote_settings_without_an_address_are_refused(tmp_path: Path) -> None:
    """A local cluster makes its own certificate: tls_* or allow_plaintext there would be silently unused."""
    pytest.importorskip("distributed")
    from execution import open_executor

    files = _certificate_files(tmp_path)
    with pytest.raises(ValueError, match=re.escape("executor.tls_ca_file: settings of a remote scheduler")):
        open_executor("dask", tls_ca_file=str(files["cert"]))
    with pytest.raises(ValueError, match=re.escape("executor.allow_plaintext: settings of a remote scheduler")):
        open_executor("dask", allow_plaintext=True)


def test_a_tls_address_without_certificates_says_which_settings_to_give(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed")
    from execution import open_executor

    for name in ("CA_FILE", "CLIENT__CERT", "CLIENT__KEY"):
        monkeypatch.delenv(f"DASK_DISTRIBUTED__COMM__TLS__{name}", raising=False)
    with pytest.raises(ValueError, match=re.escape("executor.tls_ca_file=PATH executor.tls_cert=PATH executor.tls_key=PATH")):
        open_executor("dask", address="tls://127.0.0.1:1")
    files = _certificate_files(tmp_path)
    with pytest.raises(ValueError, match="executor.tls_key is needed with executor.tls_ca_file"):
        open_executor("dask", address="tls://127.0.0.1:1", tls_ca_file=str(files["cert"]), tls_cert=str(files["cert"]))
    with pytest.raises(ValueError, match=re.escape(f"executor.tls_key: no file {tmp_path / 'none.key'}")):
        open_executor("dask", address="tls://127.0.0.1:1", tls_ca_file=str(files["cert"]),
                      tls_cert=str(files["cert"]), tls_key=str(tmp_path / "none.key"))


def test_a_key_given_inline_instead_of_by_path_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """Hydra writes every setting to disk (.hydra/config.yaml): a key belongs in a file, named by path."""
    pytest.importorskip("distributed")
    from execution import open_executor

    files = _certificate_files(tmp_path)
    pem = files["key"].read_text()
    with pytest.raises(ValueError, match="executor.tls_key must be the path of a file") as raised:
        open_executor("dask", address="tls://127.0.0.1:1", tls_ca_file=str(files["cert"]),
                      tls_cert=str(files["cert"]), tls_key=pem)
    assert "BEGIN" not in str(raised.value) and pem.splitlines()[1] not in str(raised.value)


def test_a_tls_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from execution import open_executor

    files = _certificate_files(tmp_path)
    files["key"].chmod(0o644)
    with pytest.raises(ValueError, match="executor.tls_key: .* is readable by other users"):
        open_executor("dask", address="tls://127.0.0.1:1", tls_ca_file=str(files["cert"]),
                      tls_cert=str(files["cert"]), tls_key=str(files["key"]))


def test_pfl_study_refuses_a_plaintext_scheduler_with_exit_2_saying_how_to_use_tls(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from command_runner import assert_clean_failure, run_command

    proc = run_command("pfl-study", "linked=l", "out=o", "executor=dask",
                       "executor.address=tcp://203.0.113.9:8786", cwd=tmp_path / "run")
    assert_clean_failure(proc, 2, "executor.allow_plaintext=true")
    assert "tls://" in proc.stderr and "docs/guide-cluster.md" in proc.stderr


@pytest.mark.xdist_group("clusters")
def test_a_tls_scheduler_is_reached_with_certificate_files_given_by_path(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    from execution import open_executor

    files = _certificate_files(tmp_path / "tls")
    cert, key = str(files["cert"]), str(files["key"])
    security = distributed.Security(require_encryption=True, tls_ca_file=cert, tls_scheduler_cert=cert,
                                    tls_scheduler_key=key, tls_worker_cert=cert, tls_worker_key=key,
                                    tls_client_cert=cert, tls_client_key=key)
    with distributed.LocalCluster(n_workers=1, processes=False, protocol="tls://", host="127.0.0.1",
                                  security=security, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        with open_executor("dask", address=address, tls_ca_file=cert, tls_cert=cert, tls_key=key) as ex:
            assert ex.map(square, [2, 3]) == [4, 9]
        # a client without the cluster's certificates gets no connection
        with pytest.raises((OSError, ValueError, TypeError)):
            distributed.Client(address, timeout="3s", set_as_default=False,
                               security=distributed.Security.temporary()).close()


@pytest.mark.xdist_group("clusters")
def test_a_plaintext_scheduler_is_used_when_the_steward_opts_in() -> None:
    distributed = pytest.importorskip("distributed")
    from execution import open_executor

    with distributed.LocalCluster(n_workers=1, processes=False, protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster, \
            open_executor("dask", address=cluster.scheduler_address, allow_plaintext=True) as ex:
        assert ex.map(square, [2, 3]) == [4, 9]
