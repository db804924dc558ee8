"""The linkage stage's inputs: which folder is which, whether they belong together, whether whole.

Linkage reads two folders per supplier: the supplier's ``for_research`` content and the TTP's
token map for that supplier (``pseudonymisation/supplier.py`` and ``pseudonymisation/ttp.py``
write them, each with a ``manifest.json``). Before anything is written, every input is checked
here, cheapest first, so that a wrong or damaged input is refused with its own exit code and a
message naming the folder or file (``docs/exit-codes.md``), never a value:

1. the folder exists (exit 3) and holds a manifest (exit 8);
2. the manifest is a JSON object (exit 4: truncated or damaged);
3. the folder is of the expected kind: a ``for_ttp`` folder (stage-1 pseudonyms, which must never
   reach the research environment) or a folder of the other kind is refused by name (exit 8);
4. content and token map are of the same supplier and batch, and every token map was made for
   the project this linkage is for (``project=``) under one project key (exit 8);
5. every file the manifests list exists (exit 3), is readable Parquet with the expected token
   columns (exit 4) and has the checksum its manifest records (exit 8: changed or incomplete).

The checksums are a second read of every input file (SHA-256 streams at several hundred MB/s: a
few seconds on a national register, against minutes of linkage); a file changed after its
manifest was written would otherwise be linked without notice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from extracts.atomic import file_sha256, storage_error
from extracts.contract import SUPPLIERS
from extracts.errors import EngineError, ExtractFormatError, ExtractNotFoundError
from extracts.manifests import read_manifest_object

__all__ = ["LinkageError", "SupplierInputs", "check_inputs"]

_TOKEN_MAP = "token_map.parquet"
_PROJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as pseudonymisation.prf.project_key allows


class LinkageError(EngineError):
    """Inputs of the linkage stage do not belong together or are incomplete."""

    exit_code = 8


@dataclass(frozen=True)
class SupplierInputs:
    """One supplier's checked inputs: the content files to link and the token map."""

    supplier: str
    content: Path
    token_map: Path
    content_manifest: dict
    map_manifest: dict

    @property
    def content_files(self) -> list[Path]:
        return [self.content / name for name in sorted(self.content_manifest["sha256"])]


def _manifest(folder: Path, what: str) -> dict:
    path = folder / "manifest.json"
    if not folder.is_dir():
        msg = f"{folder}: no such folder; expected {what}"
        raise ExtractNotFoundError(msg)
    if not path.is_file():
        msg = f"{folder}: no manifest.json; expected {what}"
        raise LinkageError(msg)
    return read_manifest_object(path, error=ExtractFormatError, expected=f"expected {what}")


def _kind(folder: Path, manifest: dict) -> str | None:
    """The kind of pipeline folder a manifest describes, by the fields only that kind writes."""
    if "network_key_id" in manifest or (folder / "identifiers.parquet").exists():
        return "for_ttp"
    if "batches" in manifest or (folder / "persons.parquet").exists():
        return "linked"
    if "project" in manifest or (folder / _TOKEN_MAP).exists():
        return "token_map"
    if "token_scheme" in manifest:
        return "for_research"
    return None


def _refuse_other_kind(folder: Path, kind: str | None, expected: str, setting: str) -> None:
    if kind == expected:
        return
    if kind == "for_ttp":
        msg = (f"{folder}: a supplier's for_ttp folder (stage-1 pseudonyms, for the TTP only; "
               f"it must not reach the research environment), given as {setting}")
    elif kind == "token_map":
        msg = f"{folder}: a TTP token-map folder, given as {setting}"
    elif kind == "linked":
        msg = f"{folder}: a linked folder (pfl-link's own output), given as {setting}"
    elif kind == "for_research":
        msg = f"{folder}: a supplier's for_research folder (content), given as {setting}"
    else:
        msg = f"{folder}: not a pipeline folder this stage knows, given as {setting}"
    wanted = {"for_research": "the supplier's for_research folder",
              "token_map": "the TTP's token-map folder for the supplier (pfl-ttp's out/<supplier>)"}
    raise LinkageError(f"{msg}; expected {wanted[expected]}")


def _lacking(manifest: dict, text: tuple[str, ...]) -> list[str]:
    lacking = [k for k in text if not isinstance(manifest.get(k), str) or not manifest[k]]
    checksums = manifest.get("sha256")
    if not isinstance(checksums, dict) or not all(isinstance(v, str) for v in checksums.values()):
        lacking.append("sha256")
    return lacking


def _content(supplier: str, folder: Path) -> dict:
    setting = f"content.{supplier}"
    manifest = _manifest(folder, "a supplier's for_research folder")
    _refuse_other_kind(folder, _kind(folder, manifest), "for_research", setting)
    lacking = _lacking(manifest, ("supplier", "batch_id"))
    if lacking:
        msg = (f"{folder}: not a supplier's for_research folder "
               f"(its manifest lacks {', '.join(lacking)})")
        raise LinkageError(msg)
    if manifest["supplier"] != supplier:
        msg = (f"{supplier}: content and token map are not both from supplier {supplier!r} "
               f"({setting})")
        raise LinkageError(msg)
    tables = {f"{t}.parquet" for t in SUPPLIERS[supplier].table_names}
    if set(manifest["sha256"]) != tables:
        msg = (f"{folder}: its manifest does not list exactly the {supplier} tables "
               f"({', '.join(sorted(tables))}); not a complete for_research folder")
        raise LinkageError(msg)
    return manifest


def _token_map(supplier: str, folder: Path, project: str) -> dict:
    setting = f"token_maps.{supplier}"
    manifest = _manifest(folder, "a TTP token-map folder")
    _refuse_other_kind(folder, _kind(folder, manifest), "token_map", setting)
    lacking = _lacking(manifest, ("supplier", "batch_id", "project", "project_key_id"))
    if not lacking and _TOKEN_MAP not in manifest["sha256"]:
        lacking.append(f"the checksum of {_TOKEN_MAP}")
    if lacking:
        msg = f"{folder}: not a TTP token-map folder (its manifest lacks {', '.join(lacking)})"
        raise LinkageError(msg)
    if manifest["supplier"] != supplier:
        msg = (f"{supplier}: content and token map are not both from supplier {supplier!r} "
               f"({setting})")
        raise LinkageError(msg)
    if manifest["project"] != project:
        made_for = manifest["project"]
        shown = repr(made_for) if _PROJECT_ID.match(made_for) else "another project"
        msg = (f"{folder}: the token map was made for project {shown}, not for project {project!r} "
               "(project=); ask the TTP for this project's token maps")
        raise LinkageError(msg)
    return manifest


def _check_file(
    path: Path, checksum: str, columns: dict[str, pl.DataType], *, required: bool
) -> None:
    """The file exists, is Parquet with ``columns`` (``required`` or where present), has its checksum."""
    if not path.is_file():
        msg = f"{path}: missing; its folder's manifest lists it (the folder is incomplete)"
        raise ExtractNotFoundError(msg)
    try:
        schema = pl.read_parquet_schema(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        if storage_error(exc) is not None:  # permission denied, I/O error: exit 10 (extracts.cli)
            raise
        msg = f"{path}: not a readable Parquet file ({type(exc).__name__}); truncated or damaged"
        raise ExtractFormatError(msg) from None
    wrong = [name for name, dtype in columns.items()
             if schema.get(name, None if required else dtype) != dtype]
    if wrong:
        msg = (f"{path}: column(s) {', '.join(wrong)} missing or of another type than the "
               "pipeline writes")
        raise ExtractFormatError(msg)
    if file_sha256(path) != checksum:
        msg = (f"{path}: checksum differs from its manifest (the file was changed after the manifest "
               "was written, or is incomplete)")
        raise LinkageError(msg)


def check_inputs(content: dict[str, Path], token_maps: dict[str, Path], *, project: str,
                 suppliers: tuple[str, ...]) -> dict[str, SupplierInputs]:
    """Check every supplier's content and token map (see the module docstring).

    Returns:
        Per supplier, the checked inputs.

    Raises:
        ExtractNotFoundError: a folder or a listed file does not exist (exit 3).
        ExtractFormatError: a manifest or Parquet file cannot be read (exit 4).
        LinkageError: the inputs are of another kind, supplier, batch or project, or a file
            differs from its manifest (exit 8).
    """
    missing = [s for s in suppliers if s not in content or s not in token_maps]
    if missing:
        msg = f"linkage needs content and a token map for every supplier; missing: {missing}"
        raise LinkageError(msg)
    checked: dict[str, SupplierInputs] = {}
    for s in suppliers:
        c = _content(s, Path(content[s]))
        t = _token_map(s, Path(token_maps[s]), project)
        if c["batch_id"] != t["batch_id"]:
            msg = (f"{s}: the token map was made for another batch of content (batch ids differ); "
                   "rerun the TTP step on this batch's identifier file")
            raise LinkageError(msg)
        checked[s] = SupplierInputs(s, Path(content[s]), Path(token_maps[s]), c, t)
    if len({i.map_manifest["project_key_id"] for i in checked.values()}) != 1:
        msg = ("token maps made under different project keys; they cannot link (rerun the TTP "
               "step once for both)")
        raise LinkageError(msg)
    for i in checked.values():
        _check_file(i.token_map / _TOKEN_MAP, i.map_manifest["sha256"][_TOKEN_MAP],
                    {"token": pl.Int64(), "p2": pl.String()}, required=True)
        for path in i.content_files:
            _check_file(path, i.content_manifest["sha256"][path.name], {"token": pl.Int64()},
                        required=False)
    return checked
