"""Bundles: a saved model that reloads identically somewhere else, or fails loudly.

A bundle is an ordinary ``save_pretrained`` directory plus what makes it checkable::

    OUT_DIR/
      config.json, model.safetensors, tokenizer files   the model (weights as safetensors)
      *.py                                              custom code named by auto_map
      modules.json, 1_Pooling/, ...                     sentence-transformers modules
      fingerprint.tensors                               outputs on probe texts (safetensors format)
      README.md                                         model card
      tether.json                                       manifest, written last

The manifest holds the ModelSpec to reload it (source ``.``), the exact class, sha256
of every file, library versions and the fingerprint's tolerance. ``load()`` of a bundle
checks the manifest (class, completeness, small files' hashes); ``verify()`` checks
everything, reloads and recomputes the fingerprint.

Saving is atomic: everything is written to a hidden temp dir beside OUT_DIR, fsynced,
and swapped in with one rename (Linux: one ``renameat2(RENAME_EXCHANGE)`` when replacing
a bundle), so OUT_DIR is always absent, the old bundle or the complete new one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import (
    BundleClassMismatchError,
    BundleError,
    IncompleteBundleError,
    SpecError,
    TetherError,
    VerificationError,
)
from tether.fingerprint import (
    Fingerprint,
    FingerprintComparison,
    Tolerance,
    compare_fingerprints,
    compute_fingerprint,
    format_comparison,
    load_fingerprint,
    recompute_like,
    save_fingerprint,
)
from tether.inspection import read_json, sha256_file
from tether.spec import ModelSpec

if TYPE_CHECKING:
    from tether.card import CardInfo
    from tether.loading import LoadedModel

MANIFEST_NAME = "tether.json"
#: safetensors format, but not a .safetensors name: weight scanners (transformers,
#: sentence-transformers, `tether inspect`) must never take it for model weights.
FINGERPRINT_NAME = "fingerprint.tensors"
CARD_NAME = "README.md"
BUNDLE_FORMAT = "tether-bundle/1"

#: Files that document the model without changing it: a change is reported, not failed,
#: so that a user can fill in the model card's TODOs.
DOC_FILES = frozenset({CARD_NAME})
#: Files up to this size are hashed on every load() (configs, tokenizer, code); larger
#: ones (weights) only have their size checked there, and are hashed by verify().
LOAD_HASH_LIMIT = 16 * 1024 * 1024
#: sentence-transformers files beside the transformer weights.
ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
#: load_kwargs that describe the saving machine, not the model.
_MACHINE_LOCAL_KWARGS = ("cache_dir", "local_files_only", "token", "use_auth_token", "subfolder")
_VERSION_PACKAGES = (
    "tether",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "huggingface_hub",
    "sentence-transformers",
    "numpy",
)

#: Fault injection for the kill-during-save tests: SIGKILL this process at that stage.
KILL_AT_ENV = "TETHER_SAVE_KILL_AT"
SAVE_STAGES = (
    "started",
    "model-written",
    "fingerprint-written",
    "card-written",
    "manifest-written",
    "old-aside",
    "swapped",
)

#: Temp dirs this process is writing: save() may load its own unfinished bundle to
#: check that it reproduces the model in memory; nothing else may.
_SAVING: set[Path] = set()
#: Bundles whose files verify() has just hashed in full: load() skips its quick check so
#: that a tampered bundle is still reloaded and its outputs compared.
_FILES_CHECKED: set[Path] = set()


# -- manifest -------------------------------------------------------------------------


@dataclass
class Manifest:
    """The contents of ``tether.json``."""

    spec: dict[str, Any]
    model_class: dict[str, Any]  # {"name", "module", "custom_code"}
    files: dict[str, dict[str, Any]]  # relative path -> {"sha256", "size"}
    fingerprint: dict[str, Any]  # {"file", "atol", "min_cosine", "texts", "outputs", ...}
    versions: dict[str, str | None]
    origin: dict[str, Any]  # where the model was loaded from before saving
    created: str
    format: str = BUNDLE_FORMAT
    complete: bool = True

    @property
    def tolerance(self) -> Tolerance:
        return Tolerance(float(self.fingerprint["atol"]), float(self.fingerprint["min_cosine"]))

    @property
    def class_name(self) -> str:
        return str(self.model_class["name"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: Path) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
            raise BundleError(
                f"{where} is not a tether bundle manifest (format "
                f"{data.get('format') if isinstance(data, dict) else None!r}).",
                "Re-save the model with `tether save`.",
            )
        if not data.get("complete"):
            raise IncompleteBundleError(
                f"{where.parent} is a bundle whose save never finished (tether.json is the "
                "unfinished marker written when the save started).",
                "Delete the directory and save the model again with `tether save`.",
            )
        known = {f for f in cls.__dataclass_fields__}
        missing = sorted(known - set(data) - {"format", "complete"})
        if missing:
            raise BundleError(
                f"{where} lacks manifest field(s): {', '.join(missing)}.",
                "Re-save the model with `tether save`.",
            )
        return cls(**{k: v for k, v in data.items() if k in known})


def is_bundle(path: str | Path) -> bool:
    """True when ``path`` is a directory with a tether manifest (finished or not)."""
    return (Path(path) / MANIFEST_NAME).is_file()


def read_manifest(path: str | Path) -> Manifest:
    """Read a bundle's ``tether.json``; raise BundleError if absent, unfinished or invalid."""
    path = Path(path)
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(
            f"{str(path)!r} is not a tether bundle: it has no {MANIFEST_NAME}.",
            "Pass a directory written by `tether save`, or save this model first "
            "(`tether save SOURCE OUT_DIR`).",
        )
    return Manifest.from_dict(read_json(manifest_path), manifest_path)


def bundle_spec(path: str | Path, **overrides: Any) -> ModelSpec:
    """The ModelSpec stored in a bundle, with ``source`` set to the bundle directory."""
    path = Path(path).expanduser().resolve()
    manifest = read_manifest(path)
    spec = ModelSpec.from_dict(dict(manifest.spec, source=str(path)))
    if not overrides:
        return spec
    try:
        return spec.replace(**overrides)
    except TypeError as exc:
        raise SpecError(
            f"Unknown ModelSpec field in overrides: {exc}.", "Pass ModelSpec field names."
        ) from exc


def load_bundle(path: str | Path, **overrides: Any) -> LoadedModel:
    """Load a bundle exactly as it was saved (its manifest's spec), with every guard on.

    ``overrides`` change spec fields, e.g. ``device="cuda"``; a different class fails.
    """
    from tether.loading import load

    return load(bundle_spec(path, **overrides))


# -- the guards load() runs on a bundle -------------------------------------------------


def check_bundle_spec(spec: ModelSpec, path: Path) -> Manifest | None:
    """Before loading: refuse unfinished or changed bundles, and a class other than saved.

    Returns the manifest (None when ``path`` is not a bundle) for ``check_bundle_class``.
    """
    if not (path / MANIFEST_NAME).is_file():
        return None
    if path.resolve() in _SAVING:
        data = read_json(path / MANIFEST_NAME)
        return Manifest.from_dict(dict(data, complete=True), path) if data.get("spec") else None
    manifest = read_manifest(path)
    if path.resolve() not in _FILES_CHECKED:
        _check_files_on_load(path, manifest)
    wanted = _predict_class(spec, path, manifest)
    if wanted is not None and wanted != manifest.class_name:
        raise _class_mismatch(path, manifest, wanted)
    return manifest


def _predict_class(spec: ModelSpec, path: Path, manifest: Manifest) -> str | None:
    """The class name ``spec`` will build from this bundle, when it can be told without
    running code; None when only loading can tell (``check_bundle_class`` then does)."""
    if spec.is_sentence_transformers or manifest.class_name == "SentenceTransformer":
        return spec.model_class or f"the class of task {spec.task!r}"
    name = spec.model_class
    if name is None:
        from tether.spec import resolve_task

        classes = resolve_task(spec.task or "")[1].get("pt") or ()
        if not classes:
            return None
        name = classes[0].__name__
    if name == manifest.spec.get("model_class"):
        return manifest.class_name
    if not name.startswith("Auto"):
        return name
    config = read_json(path / "config.json") if (path / "config.json").is_file() else {}
    if spec.trust_remote_code and name in (config.get("auto_map") or {}):
        ref = config["auto_map"][name]
        return str(ref[0] if isinstance(ref, list) else ref).rsplit(".", 1)[-1]
    try:
        import transformers
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        auto = getattr(transformers, name)
        return str(auto._model_mapping[CONFIG_MAPPING[config["model_type"]]].__name__)
    except (AttributeError, KeyError, ImportError, ValueError):
        return None


def check_bundle_class(manifest: Manifest | None, loaded: LoadedModel) -> None:
    """After loading: the class actually built must be the one the bundle was saved as."""
    if manifest is None:
        return
    built = type(loaded.model).__name__
    if built != manifest.class_name:
        raise _class_mismatch(loaded.path, manifest, built)


def _class_mismatch(path: Path, manifest: Manifest, wanted: str) -> BundleClassMismatchError:
    how = manifest.spec.get("model_class") or f"task={manifest.spec.get('task')!r}"
    return BundleClassMismatchError(
        f"Bundle {str(path)!r} was saved and fingerprinted as {manifest.class_name}, but is "
        f"being loaded as {wanted}: its outputs would not be the ones it was saved with.",
        f"Load it with model_class={how!r} (`tether.load_bundle(path)` reads it from the "
        "manifest). To put another head on these weights on purpose, load the original "
        "source with that class and save a new bundle.",
    )


def _check_files_on_load(path: Path, manifest: Manifest) -> None:
    """Cheap checks on every load: no file missing, sizes equal, small files' sha256."""
    missing, changed = [], []
    for rel, meta in manifest.files.items():
        if rel in DOC_FILES:
            continue
        file = path / rel
        if not file.is_file():
            missing.append(rel)
        elif file.stat().st_size != meta["size"] or (
            meta["size"] <= LOAD_HASH_LIMIT and sha256_file(file) != meta["sha256"]
        ):
            changed.append(rel)
    if missing:
        raise IncompleteBundleError(
            f"Bundle {str(path)!r} is missing file(s) listed in its manifest: "
            f"{', '.join(missing)}.",
            "Restore the bundle from a complete copy (or re-save it), then run "
            "`tether verify BUNDLE`.",
        )
    if changed:
        raise BundleError(
            f"Bundle {str(path)!r} has file(s) that changed since it was saved: "
            f"{', '.join(changed)}.",
            "Run `tether verify BUNDLE` for the full report; restore the bundle from a "
            "trusted copy or re-save it.",
        )


# -- save -------------------------------------------------------------------------------


def save(
    model: ModelSpec | LoadedModel,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    card: CardInfo | None = None,
    tolerance: Tolerance | None = None,
) -> Path:
    """Save a model as a bundle that reloads identically, atomically.

    ``model`` is a ModelSpec (loaded through ``tether.load``) or a LoadedModel you have
    used or fine-tuned in memory. The saved bundle is reloaded before it is published,
    and must reproduce the in-memory model's outputs within ``tolerance``.
    """
    from tether.loading import LoadedModel, load

    loaded = model if isinstance(model, LoadedModel) else load(model)
    out = Path(out_dir).expanduser().absolute()
    tolerance = tolerance or Tolerance.for_dtype(loaded.spec.dtype)
    _check_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out)

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tether-tmp-", dir=out.parent))
    _SAVING.add(tmp.resolve())
    try:
        _write_json(tmp / MANIFEST_NAME, {"format": BUNDLE_FORMAT, "complete": False})
        _kill_point("started")
        _write_model(loaded, tmp)
        _kill_point("model-written")
        manifest = _draft_manifest(loaded, tolerance)
        _write_json(tmp / MANIFEST_NAME, dict(manifest.to_dict(), complete=False))
        fingerprint = _check_reproduces(loaded, tmp, tolerance)
        save_fingerprint(fingerprint, tmp / FINGERPRINT_NAME)
        manifest.fingerprint.update(
            texts=len(fingerprint.texts),
            outputs=fingerprint.shapes(),
            sampled_columns=sorted(fingerprint.columns),
        )
        _kill_point("fingerprint-written")
        from tether.card import write_card

        write_card(tmp, manifest, info=card, source_dir=loaded.path, model_name=out.name)
        _kill_point("card-written")
        manifest.files = hash_files(tmp)
        _fsync_tree(tmp)
        _write_json(tmp / MANIFEST_NAME, manifest.to_dict())  # last: the bundle is complete
        _kill_point("manifest-written")
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _SAVING.discard(tmp.resolve())
    return out


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise BundleError(f"{str(out)!r} is a file.", "Pass a directory path for the bundle.")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not is_bundle(out):
        raise BundleError(
            f"{str(out)!r} exists and is not a tether bundle; tether will not replace it.",
            "Choose a new or empty directory for the bundle.",
        )
    if not overwrite:
        raise BundleError(
            f"{str(out)!r} already holds a bundle.",
            "Pass overwrite=True (`--overwrite`) to replace it atomically, or choose "
            "another directory.",
        )


def _write_model(loaded: LoadedModel, tmp: Path) -> None:
    """Weights (safetensors), config, tokenizer, custom code and sentence-transformers files."""
    if loaded.spec.is_sentence_transformers:
        loaded.model.save(str(tmp), create_model_card=False, safe_serialization=True)
    else:
        loaded.model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        _copy_sentence_transformers_files(loaded.path, tmp)
    _copy_custom_code(loaded, tmp)
    if not any(tmp.glob("*.safetensors")):
        raise BundleError(
            f"Saving {loaded.model_id!r} wrote no safetensors weights in {tmp}.",
            "Report this as a tether bug with the model class and library versions.",
        )


def _copy_sentence_transformers_files(source: Path, tmp: Path) -> None:
    """Module configs (pooling, normalize, dense layers) so the bundle embeds the same."""
    for name in ST_FILES:
        if (source / name).is_file() and not (tmp / name).exists():
            shutil.copy2(source / name, tmp / name)
    if not (source / "modules.json").is_file():
        return
    for module in read_json(source / "modules.json"):
        sub = str(module.get("path") or "")
        if sub and (source / sub).is_dir() and not (tmp / sub).exists():
            shutil.copytree(source / sub, tmp / sub)


def _copy_custom_code(loaded: LoadedModel, tmp: Path) -> None:
    """Every .py file of a custom-code model, from its source, and auto_map kept."""
    report = loaded.report
    if not report.needs_custom_code:
        return
    remote = [m for m in _auto_map_modules(report.auto_map) if "--" in m]
    if remote:
        raise BundleError(
            f"{loaded.model_id!r} takes its custom code from another repo ({', '.join(remote)}); "
            "a bundle must carry its own code to reload identically offline.",
            "Download those .py files into the model directory, point auto_map at them, "
            "load that directory with trust_remote_code=True and save it.",
        )
    for code in report.custom_code_files:
        target = tmp / code.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(loaded.path / code.path, target)
    config_path = tmp / "config.json"
    config = read_json(config_path) if config_path.is_file() else {}
    if not config.get("auto_map"):
        config["auto_map"] = report.auto_map
        _write_json(config_path, config)
    absent = [
        m
        for m in _auto_map_modules(config["auto_map"])
        if not (tmp / f"{m.replace('.', '/')}.py").is_file()
    ]
    if absent:
        raise BundleError(
            f"The saved config's auto_map names module(s) {', '.join(absent)} that are not in "
            f"{loaded.path}.",
            "Put the model's .py files next to its config.json and save again.",
        )


def _auto_map_modules(auto_map: dict[str, Any]) -> list[str]:
    refs = []
    for value in auto_map.values():
        for ref in value if isinstance(value, list) else [value]:
            if isinstance(ref, str):
                refs.append(ref.rsplit(".", 1)[0])
    return sorted(set(refs))


def _draft_manifest(loaded: LoadedModel, tolerance: Tolerance) -> Manifest:
    spec = loaded.spec
    cls = type(loaded.model)
    exact = cls.__name__
    model_class = spec.model_class
    if model_class and not spec.is_sentence_transformers and _is_builtin_class(cls):
        model_class = exact  # reload with the exact class, not the Auto class that found it
    load_kwargs = {k: v for k, v in spec.load_kwargs.items() if k not in _MACHINE_LOCAL_KWARGS}
    bundle = spec.replace(
        source=".", revision=None, tokenizer=None, model_class=model_class, load_kwargs=load_kwargs
    )
    return Manifest(
        spec=bundle.to_dict(),
        model_class={
            "name": exact,
            "module": cls.__module__,
            "custom_code": loaded.report.needs_custom_code,
        },
        files={},
        fingerprint={"file": FINGERPRINT_NAME, **asdict(tolerance)},
        versions=library_versions(),
        origin={"source": spec.source, "revision": spec.revision, "path": str(loaded.path)},
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _is_builtin_class(cls: type) -> bool:
    import transformers

    return getattr(transformers, cls.__name__, None) is cls


def _check_reproduces(loaded: LoadedModel, tmp: Path, tolerance: Tolerance) -> Fingerprint:
    """Reload what was written and compare it with the model in memory.

    Returns the reloaded model's fingerprint: the bundle records what it reloads as.
    """
    from tether.loading import load

    manifest = read_json(tmp / MANIFEST_NAME)
    in_memory = compute_fingerprint(loaded)
    reloaded = load(ModelSpec.from_dict(dict(manifest["spec"], source=str(tmp))))
    if type(reloaded.model).__name__ != type(loaded.model).__name__:
        raise BundleError(
            f"The saved bundle reloads as {type(reloaded.model).__name__}, not "
            f"{type(loaded.model).__name__}.",
            "Report this as a tether bug with the model class and library versions.",
        )
    fingerprint = recompute_like(reloaded, in_memory)
    comparison = compare_fingerprints(in_memory, fingerprint, tolerance)
    if not comparison.ok:
        raise BundleError(
            "The saved files do not reproduce the model in memory; the bundle was not "
            "written.\n" + format_comparison(comparison),
            "Something in the model lives outside its weights and config (a patched "
            "module, a changed tokenizer): save it with save_pretrained-compatible changes "
            "only, or put the code in a custom-code file.",
        )
    return fingerprint


def library_versions() -> dict[str, str | None]:
    """Python and the libraries whose versions change numerics or loading."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSION_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def hash_files(root: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under ``root`` except the manifest itself."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel != MANIFEST_NAME:
            files[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return files


# -- atomic publish -----------------------------------------------------------------------


def _swap_in(tmp: Path, out: Path) -> None:
    """Publish ``tmp`` as ``out``: absent -> new, or old -> new with nothing in between."""
    if not out.exists():
        os.rename(tmp, out)
        _fsync_dir(out.parent)
        _kill_point("swapped")
        return
    if _exchange(tmp, out):  # tmp now holds the old bundle
        _fsync_dir(out.parent)
        _kill_point("swapped")
        _discard(tmp, out)
        return
    # No atomic exchange (not Linux, or the filesystem refuses): old aside, new in.
    aside = out.parent / f".{out.name}.tether-old-{uuid.uuid4().hex[:8]}"
    os.rename(out, aside)
    _kill_point("old-aside")
    os.rename(tmp, out)
    _fsync_dir(out.parent)
    _kill_point("swapped")
    _discard(aside, out)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux renameat2(RENAME_EXCHANGE); False if unsupported."""
    if sys.platform != "linux" or os.environ.get("TETHER_NO_RENAME_EXCHANGE"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, f"renameat2({a}, {b}) failed: {os.strerror(err)}")


def _discard(old: Path, out: Path) -> None:
    """Remove a replaced bundle: first rename it to a trash name, so no half-deleted
    directory ever carries a bundle-like name."""
    trash = out.parent / f".{out.name}.tether-trash-{uuid.uuid4().hex[:8]}"
    os.rename(old, trash)
    shutil.rmtree(trash, ignore_errors=True)


def recover(out_dir: str | Path) -> list[Path]:
    """Clean up after a save that was killed: remove temp and trash dirs beside ``out_dir``;
    if ``out_dir`` is gone but its previous bundle was set aside, put it back.

    Returns the paths removed or restored. ``save`` calls this first.
    """
    out = Path(out_dir).expanduser().absolute()
    touched: list[Path] = []
    if not out.parent.is_dir():
        return touched
    for leftover in sorted(out.parent.glob(f".{out.name}.tether-*")):
        kind = leftover.name[len(out.name) + 9 :].split("-", 1)[0]
        if kind == "old" and not out.exists() and _is_complete_bundle(leftover):
            os.rename(leftover, out)
            touched.append(out)
        elif kind in ("tmp", "trash", "old") and leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
            touched.append(leftover)
    return touched


def _is_complete_bundle(path: Path) -> bool:
    try:
        read_manifest(path)
    except TetherError:
        return False
    return True


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temp file, fsync, rename: readers see old or new, never half."""
    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, path)
    _fsync_dir(path.parent)


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        elif path.is_dir():
            _fsync_dir(path)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems cannot fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _kill_point(stage: str) -> None:
    if os.environ.get(KILL_AT_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)


# -- verify -------------------------------------------------------------------------------


@dataclass
class VerificationReport:
    """What verify() found: file hashes, the reload, and the recomputed fingerprint."""

    bundle: str
    saved_class: str
    loaded_class: str | None = None
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    docs_changed: list[str] = field(default_factory=list)
    load_error: str | None = None
    comparison: FingerprintComparison | None = None
    versions_changed: dict[str, list[str | None]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            not (self.changed or self.missing or self.extra or self.load_error)
            and self.comparison is not None
            and self.comparison.ok
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["comparison"] = self.comparison.to_dict() if self.comparison else None
        data["ok"] = self.ok
        return data

    def format(self) -> str:
        """A readable report: verdict first, then what differs."""
        lines = [f"{'OK' if self.ok else 'FAILED'}: bundle {self.bundle}"]
        lines.append(
            f"class: saved as {self.saved_class}"
            + (f", loaded as {self.loaded_class}" if self.loaded_class else "")
        )
        if not (self.changed or self.missing or self.extra):
            lines.append("files: all sha256 match the manifest")
        for label, names in (
            ("changed", self.changed),
            ("missing", self.missing),
            ("extra (not in the manifest)", self.extra),
            ("model card changed (does not affect outputs)", self.docs_changed),
        ):
            if names:
                lines.append(f"files {label}: {', '.join(names)}")
        if self.load_error:
            lines.append(f"reload: {self.load_error}")
        if self.comparison is not None:
            lines.append(format_comparison(self.comparison))
        for name, (saved, now) in self.versions_changed.items():
            lines.append(f"note: {name} {saved} when saved, {now} now")
        return "\n".join(lines)

    def raise_for_status(self) -> None:
        """Raise VerificationError with the report unless the bundle verified."""
        if not self.ok:
            raise VerificationError(self.format())


def verify(
    path: str | Path, *, tolerance: Tolerance | None = None, **overrides: Any
) -> VerificationReport:
    """Check a bundle: every file's sha256, then reload and recompute its fingerprint.

    ``overrides`` change spec fields for the reload (``device="cuda"``, or a class, which
    fails unless it builds the saved class). ``tolerance`` defaults to the manifest's.
    Code that changed is never run: the reload is skipped and the report says why.
    """
    root = Path(path).expanduser().resolve()
    manifest = read_manifest(root)
    report = VerificationReport(str(root), manifest.class_name)
    _compare_files(root, manifest, report)
    now = library_versions()
    report.versions_changed = {
        k: [v, now.get(k)] for k, v in manifest.versions.items() if now.get(k) != v
    }
    spec = bundle_spec(root, **overrides)
    touched = report.changed + report.missing + report.extra
    if any(name.endswith(".py") for name in touched) or (
        spec.trust_remote_code and "config.json" in touched
    ):
        report.load_error = (
            "not reloaded: the custom code (or the config that points to it) differs from "
            "what was saved, and tether does not run code it could not verify"
        )
        return report
    try:
        expected = load_fingerprint(root / manifest.fingerprint["file"])
        from tether.loading import load

        _FILES_CHECKED.add(root)
        loaded = load(spec)
    except TetherError as exc:
        report.load_error = f"{type(exc).__name__}: {exc.message}"
        return report
    finally:
        _FILES_CHECKED.discard(root)
    report.loaded_class = type(loaded.model).__name__
    actual = recompute_like(loaded, expected)
    report.comparison = compare_fingerprints(expected, actual, tolerance or manifest.tolerance)
    return report


def _compare_files(root: Path, manifest: Manifest, report: VerificationReport) -> None:
    present = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    }
    for rel, meta in sorted(manifest.files.items()):
        if rel not in present:
            report.missing.append(rel)
        elif sha256_file(root / rel) != meta["sha256"]:
            (report.docs_changed if rel in DOC_FILES else report.changed).append(rel)
    report.extra = sorted(
        present - set(manifest.files) - {p for p in present if "__pycache__" in p}
    )
