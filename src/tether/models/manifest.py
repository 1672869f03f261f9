"""What a tether bundle's manifest means for loading, and the checks ``load()`` runs on one.

A bundle (see :mod:`tether.bundles`) is a ``save_pretrained`` directory with a
``tether.json`` manifest written last. Loading lives below bundles, so the meaning of
the manifest for loading lives here, where both ``load()`` and the bundle writer reach
it: the file names, the manifest's shape, and the guards that refuse an unfinished or
changed bundle, or one loaded as another class than it was saved as.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import BundleClassMismatchError, BundleError, IncompleteBundleError, SpecError
from tether.models.inspection import read_json, sha256_cached
from tether.models.sources import is_local_source, pinned_commit, resolve_source
from tether.models.spec import ModelSpec, read_token_env
from tether.tolerances import Tolerance

if TYPE_CHECKING:
    from tether.models.loading import LoadedModel

MANIFEST_NAME = "tether.json"
#: safetensors format, but not a .safetensors name: weight scanners (transformers,
#: sentence-transformers, `tether inspect`) must never take it for model weights.
FINGERPRINT_NAME = "fingerprint.tensors"
CARD_NAME = "README.md"
BUNDLE_FORMAT = "tether-bundle/1"

#: Files that document the model without changing it: a change is reported, not failed,
#: so that a user can fill in the model card's TODOs.
DOC_FILES = frozenset({CARD_NAME})
#: Files a bundle may hold beyond its manifest without changing outputs: byte-code
#: caches and what a hub checkout adds. Any other unlisted file is refused on load,
#: since some loader (sentence-transformers modules, tokenizers) might read it.
IGNORED_PARTS = frozenset({"__pycache__", ".cache", ".git"})
IGNORED_FILES = frozenset({".gitattributes"})


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
    #: An optimised bundle's evidence (tether.bundles.optimized.Evidence as a dict):
    #: the graph the engine runs instead of the weights, and the proof it is the model.
    optimized: dict[str, Any] | None = None

    @property
    def tolerance(self) -> Tolerance:
        """The tolerance the bundle was saved with (its fingerprint is judged by it)."""
        return Tolerance.from_dict(self.fingerprint)

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
                path=str(where.parent),
            )
        if not data.get("complete"):
            raise IncompleteBundleError(
                f"{where.parent} is a bundle whose save never finished (tether.json is the "
                "unfinished marker written when the save started).",
                "Delete the directory and save the model again with `tether save`.",
                path=str(where.parent),
            )
        known = {f for f in cls.__dataclass_fields__}
        bad_paths = sorted(p for p in data.get("files") or {} if not _is_inside_path(p))
        if bad_paths:
            raise BundleError(
                f"{where} lists file path(s) outside the bundle: {', '.join(bad_paths)}; "
                "a manifest names files relative to the bundle, without '..'.",
                "Do not load this bundle; re-save the model from a trusted source.",
                path=str(where.parent),
            )
        missing = sorted(known - set(data) - {"format", "complete", "optimized"})
        if missing:
            raise BundleError(
                f"{where} lacks manifest field(s): {', '.join(missing)}.",
                "Re-save the model with `tether save`.",
                path=str(where.parent),
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
            path=str(path),
        )
    return Manifest.from_dict(read_json(manifest_path), manifest_path)


#: Spec fields that are the loading user's decisions: a bundle's manifest never sets
#: them, whatever it says (a bundle someone sends you must not trust itself).
USER_DECISIONS = {"trust_remote_code": False, "allow_pickle": False, "token_env": None}


def bundle_spec(source: str | Path, **overrides: Any) -> ModelSpec:
    """The ModelSpec stored in a bundle: a local directory, or a hub repo id.

    For a directory, ``source`` becomes that directory. For a hub repo id (at
    ``revision=``, default the main branch; downloaded, or taken from the HF cache
    offline) ``source`` stays the repo id and ``revision`` becomes the commit that
    was resolved, so the spec names exactly these files wherever it travels.
    ``trust_remote_code``, ``allow_pickle`` and ``token_env`` come only from
    ``overrides`` (the caller), never from the manifest.
    """
    overrides = dict(overrides)
    revision = overrides.pop("revision", None)
    root, commit = resolve_bundle(
        source,
        revision,
        token=_override_token(overrides.get("token_env")),
        load_kwargs=overrides.get("load_kwargs"),
    )
    manifest = read_manifest(root)
    where = {"source": str(source), "revision": commit} if commit else {"source": str(root)}
    spec = ModelSpec.from_dict(dict(manifest.spec, **where, **USER_DECISIONS))
    if not overrides:
        return spec
    try:
        return spec.replace(**overrides)
    except TypeError as exc:
        raise SpecError(
            f"Unknown ModelSpec field in overrides: {exc}.",
            "Pass ModelSpec field names.",
            field=str(exc),
        ) from exc


def resolve_bundle(
    source: str | Path,
    revision: str | None = None,
    *,
    token: str | None = None,
    load_kwargs: dict[str, Any] | None = None,
) -> tuple[Path, str | None]:
    """The local directory of a bundle and, for a hub repo id, the commit it resolved to.

    A path that does not exist is reported as not a bundle (as before hub ids were
    accepted); anything shaped like ``org/name`` that is not a directory goes to the hub.
    ``token`` is used for the download only and kept nowhere.
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir() or is_local_source(text) or not _looks_like_repo_id(text):
        if revision:
            resolve_source(text, revision)  # raises: a directory has no revisions
        return path.resolve(), None
    root = resolve_source(text, revision, load_kwargs or {}, token)
    return root, pinned_commit(text, root)


def _looks_like_repo_id(text: str) -> bool:
    return bool(_REPO_ID.fullmatch(text))


#: ``org/name`` as the hub spells repo ids (a bare ``name`` is taken for a directory).
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def _override_token(token_env: Any) -> str | None:
    """The token ``token_env`` names (read now, never stored); None lets huggingface_hub
    find HF_TOKEN or the `hf auth login` store."""
    if not token_env:
        return None
    return read_token_env(str(token_env))


# -- the guards load() runs on a bundle -------------------------------------------------


def check_bundle_spec(spec: ModelSpec, path: Path) -> Manifest | None:
    """Before loading: refuse unfinished or changed bundles, and a class other than saved.

    Returns the manifest (None when ``path`` is not a bundle) for ``check_bundle_class``.
    """
    if not (path / MANIFEST_NAME).is_file():
        return None
    manifest = read_manifest(path)
    check_files_on_load(path, manifest)
    check_predicted_class(spec, path, manifest)
    return manifest


def check_predicted_class(spec: ModelSpec, path: Path, manifest: Manifest) -> None:
    """Refuse, before building anything, a spec that would build another class than saved."""
    wanted = _predict_class(spec, path, manifest)
    if wanted is not None and wanted != manifest.class_name:
        raise _class_mismatch(path, manifest, wanted)


def _predict_class(spec: ModelSpec, path: Path, manifest: Manifest) -> str | None:
    """The class name ``spec`` will build from this bundle, when it can be told without
    running code; None when only loading can tell (``check_bundle_class`` then does)."""
    if spec.is_sentence_transformers or manifest.class_name == "SentenceTransformer":
        return spec.model_class or f"the class of task {spec.task!r}"
    name = spec.model_class
    if name is None:
        from tether.models.spec import task_model_class

        config = read_json(path / "config.json") if (path / "config.json").is_file() else {}
        cls = task_model_class(spec.task or "", config.get("model_type"))
        if cls is None:
            return None
        name = cls.__name__
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
        path=str(path),
        saved_class=manifest.class_name,
        requested_class=wanted,
    )


def _is_inside_path(relative: Any) -> bool:
    """A manifest path: relative, POSIX, no '..' or empty parts, not absolute."""
    if not isinstance(relative, str) or not relative or "\\" in relative:
        return False
    parts = relative.split("/")
    return not relative.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def escapes(root: Path, relative: str) -> bool:
    """True when ``root/relative`` resolves outside the bundle (a symlink pointing away).

    A bundle in the Hugging Face cache is a snapshot directory whose files are links
    into the same repo's ``blobs/`` folder, which huggingface_hub wrote and names by
    hash: those links stay inside the download and are the bundle's own files.
    """
    target = (root / relative).resolve()
    root = root.resolve()
    inside = [root]
    if root.parent.name == "snapshots":
        inside.append(root.parent.parent / "blobs")
    return not any(target.is_relative_to(folder) for folder in inside)


def present_files(root: Path) -> set[str]:
    """Every file under a bundle that loading could read: all but the manifest itself,
    byte-code caches and hub metadata (IGNORED_PARTS, IGNORED_FILES)."""
    found = set()
    for file in root.rglob("*"):
        rel = file.relative_to(root)
        if (
            (file.is_file() or file.is_symlink())
            and rel.as_posix() != MANIFEST_NAME
            and rel.name not in IGNORED_FILES
            and not IGNORED_PARTS.intersection(rel.parts)
        ):
            found.add(rel.as_posix())
    return found


def check_files_on_load(path: Path, manifest: Manifest) -> None:
    """On every load, everything that can change the outputs: every listed file present
    and unchanged (sha256, cached per file version), none pointing outside the bundle,
    and no unlisted file a loader could read (an added module config would change
    embeddings while every listed hash still matches)."""
    missing, changed = [], []
    for rel, meta in manifest.files.items():
        if rel in DOC_FILES:
            continue
        file = path / rel
        if not file.is_file():
            missing.append(rel)
        elif (
            escapes(path, rel)
            or file.stat().st_size != meta["size"]
            or sha256_cached(file) != meta["sha256"]
        ):
            changed.append(rel)
    unlisted = sorted(present_files(path) - set(manifest.files))
    if unlisted:
        raise BundleError(
            f"Bundle {str(path)!r} holds file(s) its manifest does not list: "
            f"{', '.join(unlisted)}. Loaders may read them (module configs, tokenizer "
            "files, code), so they could change the outputs unseen.",
            "Remove them, or re-save the bundle so that the manifest covers them; "
            "`tether verify BUNDLE` shows the full report.",
            path=str(path),
        )
    if missing:
        raise IncompleteBundleError(
            f"Bundle {str(path)!r} is missing file(s) listed in its manifest: "
            f"{', '.join(missing)}.",
            "Restore the bundle from a complete copy (or re-save it), then run "
            "`tether verify BUNDLE`.",
            path=str(path),
            missing=missing,
        )
    if changed:
        raise BundleError(
            f"Bundle {str(path)!r} has file(s) that changed since it was saved: "
            f"{', '.join(changed)}.",
            "Run `tether verify BUNDLE` for the full report; restore the bundle from a "
            "trusted copy or re-save it.",
            path=str(path),
        )
