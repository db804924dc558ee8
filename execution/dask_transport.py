"""How the driver talks to a remote Dask scheduler: TLS with the cluster's certificates, or refused.

Between the driver and a remote cluster travel the partitions' small results and, on a worker's
spill or a scheduler's transfer, person-level pseudonymised data; and a Dask scheduler runs any
client's code on its workers as the steward. A plain ``tcp://`` (or ``ucx://``) address is
therefore refused (fail closed) unless the steward opts in with ``executor.allow_plaintext=true``,
knowing the risk (docs/guide-cluster.md, *On a Dask cluster*).

A ``tls://`` address takes the cluster's certificate files **by path**: ``executor.tls_ca_file``
(the certificate authority the scheduler's certificate is checked against), ``executor.tls_cert``
and ``executor.tls_key`` (this client's certificate and private key, which the scheduler checks).
Hydra writes every setting to disk, so a setting holding a certificate or key itself (PEM text) is
refused without echoing it, and a key file that other users can read is refused. Without these
settings, Dask's own configuration (``distributed.comm.tls.*``) is used when it names them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["PLAINTEXT_SCHEMES", "scheduler_security"]

#: Schemes whose traffic is not encrypted (``inproc://`` stays inside the driver's process).
PLAINTEXT_SCHEMES = ("tcp", "ucx")

_TLS_SETTINGS = ("tls_ca_file", "tls_cert", "tls_key")
_HOW = ("use a tls:// address with the cluster's certificate files: executor.address=tls://HOST:PORT "
        "executor.tls_ca_file=PATH executor.tls_cert=PATH executor.tls_key=PATH (or Dask's "
        "distributed.comm.tls settings; docs/guide-cluster.md)")


def scheduler_security(distributed: Any, address: str, *, allow_plaintext: object = False,
                       tls_ca_file: str | None = None, tls_cert: str | None = None,
                       tls_key: str | None = None) -> Any:
    """The ``distributed.Security`` to reach the scheduler at ``address`` with, after the checks.

    Raises:
        ValueError: a plaintext address without the opt-in, a ``tls://`` address without its
            certificates, a setting that is not a readable file's path, or a key file others can read.
    """
    if not isinstance(allow_plaintext, bool):
        msg = f"executor.allow_plaintext must be true or false, not {allow_plaintext!r}"
        raise ValueError(msg)
    scheme = address.split("://", 1)[0]
    given = {name: value for name, value in zip(_TLS_SETTINGS, (tls_ca_file, tls_cert, tls_key), strict=True)
             if value is not None}
    if scheme != "tls":
        if given:
            msg = f"executor.{', executor.'.join(given)}: the certificate settings need a tls:// address, not {scheme}://"
            raise ValueError(msg)
        if scheme in PLAINTEXT_SCHEMES and not allow_plaintext:
            msg = (f"executor.address {address} is unencrypted ({scheme}://): person-level data would cross the "
                   "network in plain text, and anyone who can reach the scheduler could run code on its workers; "
                   f"{_HOW}. On a network that is the party's own and closed to everyone else, opt in with "
                   "executor.allow_plaintext=true")
            raise ValueError(msg)
        return distributed.Security()
    if given:
        missing = [n for n in _TLS_SETTINGS if n not in given]
        if missing:
            msg = (f"executor.{missing[0]} is needed with executor.{', executor.'.join(given)}: a tls:// "
                   "scheduler checks the client's certificate too; " + _HOW)
            raise ValueError(msg)
        paths = {name: _file(name, str(value)) for name, value in given.items()}
        _owner_only(paths["tls_key"])
        return distributed.Security(require_encryption=True, tls_ca_file=paths["tls_ca_file"],
                                    tls_client_cert=paths["tls_cert"], tls_client_key=paths["tls_key"])
    configured = distributed.Security(require_encryption=True)
    if not (configured.tls_ca_file and configured.tls_client_cert):
        msg = f"executor.address {address} needs the cluster's certificates: {_HOW}"
        raise ValueError(msg)
    return configured


def _file(name: str, value: str) -> str:
    """``value`` as the path of a readable file; PEM text given inline is refused, not echoed."""
    if "-----BEGIN" in value or "\n" in value or len(value) > 4096:
        msg = (f"executor.{name} must be the path of a file, not a certificate or key itself: every setting is "
               "written to the run's configuration on disk")
        raise ValueError(msg)
    path = Path(value).expanduser()
    if not path.is_file():
        msg = f"executor.{name}: no file {path}"
        raise ValueError(msg)
    if not os.access(path, os.R_OK):
        msg = f"executor.{name}: {path} is not readable by this user"
        raise ValueError(msg)
    return str(path)


def _owner_only(path: str) -> None:
    """The client's private key: readable by its owner only (as the project's key files, mode 0600)."""
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        msg = (f"executor.tls_key: {path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
               f"make it owner-only: chmod 600 {path}")
        raise ValueError(msg)
