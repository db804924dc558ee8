"""``python -m execution``: check what the workers of an executor see (:mod:`execution.probe`).

Exit 0 when every task's worker has the project, the shared folder and the key reference asked
about; 1 when one lacks any; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from execution.executors import EXECUTORS, ExecutorError, open_executor
from execution.probe import probe_workers, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m execution", description=(
        "Run a small check on the workers of an executor: what each sees (the project, the "
        "shared folder, the key reference). Reads no data and no key."))
    parser.add_argument("--executor", choices=sorted(EXECUTORS), default="local")
    parser.add_argument("--workers", type=int, help="local cluster or pool: how many workers")
    parser.add_argument("--address", help="dask: a running scheduler, e.g. tls://scheduler:8786")
    parser.add_argument("--tls-ca-file", help="dask, tls://: the certificate authority file's path")
    parser.add_argument("--tls-cert", help="dask, tls://: this client's certificate file's path")
    parser.add_argument("--tls-key", help="dask, tls://: this client's private key file's path (mode 0600)")
    parser.add_argument("--allow-plaintext", action="store_true",
                        help="dask: accept an unencrypted tcp:// scheduler (docs/guide-cluster.md: the risk)")
    parser.add_argument("--master", help="spark: a cluster's master, e.g. spark://host:7077")
    parser.add_argument("--tasks", type=int, help="how many check tasks (default: 2 per worker)")
    parser.add_argument("--shared", type=Path, help="the folder the partitions are written to")
    parser.add_argument("--key", help="a key reference the workers must resolve: a path or env:NAME")
    args = parser.parse_args(argv)
    if args.shared is not None and not args.shared.is_dir():
        parser.error(f"--shared: {args.shared} is not a folder")
    options = {k: v for k, v in (("workers", args.workers), ("address", args.address),
                                 ("master", args.master), ("tls_ca_file", args.tls_ca_file),
                                 ("tls_cert", args.tls_cert), ("tls_key", args.tls_key),
                                 ("allow_plaintext", args.allow_plaintext or None)) if v is not None}
    try:
        with open_executor(args.executor, **options) as ex:
            views = probe_workers(ex, tasks=args.tasks or 2 * ex.workers, shared=args.shared,
                                  key_ref=args.key)
    except (ValueError, ExecutorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    return 0 if report(views, args.executor) else 1


if __name__ == "__main__":
    sys.exit(main())
