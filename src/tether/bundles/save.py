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
checks the manifest (see tether.models.manifest); ``verify()`` (tether.bundles.verify)
checks everything, reloads and recomputes the fingerprint.

Saving is atomic: everything is written to a hidden temp dir beside OUT_DIR, fsynced,
and swapped in with one rename (Linux: one ``renameat2(RENAME_EXCHANGE)`` when replacing
a bundle), so OUT_DIR is always absent, the old bundle or the complete new one.
"""

from __future__ import annotations

import logging
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.bundles import atomic
from tether.bundles.fingerprint import (
    Fingerprint,
    compare_fingerprints,
    compute_fingerprint,
    format_comparison,
    recompute_like,
    save_fingerprint,
)
from tether.errors import BundleError, TetherError
from tether.models.inspection import auto_map_modules, read_json, sha256_file
from tether.models.loading import LoadedModel, load, load_checkpoint
from tether.models.manifest import (
    BUNDLE_FORMAT,
    FINGERPRINT_NAME,
    MANIFEST_NAME,
    Manifest,
    bundle_spec,
    check_bundle_class,
    is_bundle,
    present_files,
    read_manifest,
)
from tether.models.spec import ModelSpec
from tether.tolerances import Tolerance

if TYPE_CHECKING:
    from tether.bundles.card import CardInfo

logger = logging.getLogger(__name__)

#: sentence-transformers files beside the transformer weights.
ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
#: load_kwargs that describe the saving machine, not the model.
_MACHINE_LOCAL_KWARGS = ("cache_dir", "local_files_only", "subfolder")
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


#: The steps of a save, in order, each durable once reached (see ``_reached``).
SAVE_STAGES = (
    "started",
    "model-written",
    "fingerprint-written",
    "card-written",
    "manifest-written",
    "old-aside",
    "swapped",
)


def load_bundle(path: str | Path, **overrides: Any) -> LoadedModel:
    """Load a bundle (a directory, or a hub repo id at ``revision=``) exactly as it was
    saved (its manifest's spec), with every guard on; a repo id is pinned to its commit.

    ``overrides`` change spec fields, e.g. ``device="cuda"``; a different class fails.
    """
    return load(bundle_spec(path, **overrides))


# -- save -------------------------------------------------------------------------------


def save(
    model: ModelSpec | LoadedModel,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    card: CardInfo | None = None,
    tolerance: Tolerance | None = None,
    probes: Any = None,
    additions: Callable[[Path, Manifest], None] | None = None,
) -> Path:
    """Save a model as a bundle that reloads identically, atomically.

    ``model`` is a ModelSpec (loaded through ``tether.load``) or a LoadedModel you have
    used or fine-tuned in memory. The saved bundle is reloaded before it is published,
    and must reproduce the in-memory model's outputs within ``tolerance``. ``probes``
    is a tensor model's own batch of probe inputs (a torch.Tensor, one probe per row;
    default: seeded tensors shaped for its first layer), kept in the fingerprint.
    ``additions(directory, manifest)`` writes more files into the unfinished bundle
    (and may fill manifest sections) before every file is hashed: ``tether.optimize``
    adds its graph and evidence this way, inside the same atomic save.
    """
    loaded = model if isinstance(model, LoadedModel) else load(model)
    _check_probes(loaded, probes)
    out = Path(out_dir).expanduser().absolute()
    tolerance = tolerance or Tolerance.for_dtype(loaded.spec.dtype)
    _check_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out)

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tether-tmp-", dir=out.parent))
    try:
        atomic.write_json(tmp / MANIFEST_NAME, {"format": BUNDLE_FORMAT, "complete": False})
        _reached("started")
        _write_model(loaded, tmp)
        _reached("model-written")
        manifest = _draft_manifest(loaded, tolerance)
        atomic.write_json(tmp / MANIFEST_NAME, dict(manifest.to_dict(), complete=False))
        fingerprint = _check_reproduces(loaded, tmp, manifest, tolerance, probes)
        save_fingerprint(fingerprint, tmp / FINGERPRINT_NAME)
        manifest.fingerprint.update(
            texts=len(fingerprint.texts),
            outputs=fingerprint.shapes(),
            sampled_columns=sorted(fingerprint.columns),
        )
        _reached("fingerprint-written")
        from tether.bundles.card import write_card

        write_card(tmp, manifest, info=card, source_dir=loaded.path, model_name=out.name)
        _reached("card-written")
        if additions is not None:
            additions(tmp, manifest)
        manifest.files = hash_files(tmp)
        atomic.fsync_tree(tmp)
        atomic.write_json(tmp / MANIFEST_NAME, manifest.to_dict())  # last: bundle complete
        _reached("manifest-written")
        atomic.swap_in(tmp, out, on_stage=_reached)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _reached(stage: str) -> None:
    """A save step (one of SAVE_STAGES) is durable: the crash tests kill the process here."""
    logger.debug("save: %s", stage)


def recover(out_dir: str | Path) -> list[Path]:
    """Clean up after a save that was killed: remove temp and trash dirs beside ``out_dir``;
    if ``out_dir`` is gone but its previous bundle was set aside, put it back.

    Returns the paths removed or restored. ``save`` calls this first.
    """
    return atomic.recover(out_dir, _is_complete_bundle)


def _is_complete_bundle(path: Path) -> bool:
    try:
        read_manifest(path)
    except TetherError:
        return False
    return True


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
            "Pass overwrite=True to replace it atomically, or choose another directory.",
        )


def _write_model(loaded: LoadedModel, tmp: Path) -> None:
    """Weights (safetensors), config, tokenizer, custom code and sentence-transformers files."""
    if loaded.spec.is_sentence_transformers:
        loaded.model.save(str(tmp), create_model_card=False, safe_serialization=True)
    else:
        loaded.model.save_pretrained(tmp)
        for preprocessor in (loaded.tokenizer, loaded.processor):
            if preprocessor is not None:
                preprocessor.save_pretrained(tmp)
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
    remote = [m for m in auto_map_modules(report.auto_map) if "--" in m]
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
        atomic.write_json(config_path, config)
    absent = [
        m
        for m in auto_map_modules(config["auto_map"])
        if not (tmp / f"{m.replace('.', '/')}.py").is_file()
    ]
    if absent:
        raise BundleError(
            f"The saved config's auto_map names module(s) {', '.join(absent)} that are not in "
            f"{loaded.path}.",
            "Put the model's .py files next to its config.json and save again.",
        )


def _draft_manifest(loaded: LoadedModel, tolerance: Tolerance) -> Manifest:
    spec = loaded.spec
    cls = type(loaded.model)
    exact = cls.__name__
    model_class = spec.model_class
    if model_class and not spec.is_sentence_transformers and _is_builtin_class(cls):
        model_class = exact  # reload with the exact class, not the Auto class that found it
    load_kwargs = {k: v for k, v in spec.load_kwargs.items() if k not in _MACHINE_LOCAL_KWARGS}
    # Trust (custom code, pickle) is the loading user's decision, never the bundle's:
    # the manifest records the recipe without it (see bundle_spec).
    bundle = spec.replace(
        source=".",
        revision=None,
        tokenizer=None,
        model_class=model_class,
        load_kwargs=load_kwargs,
        trust_remote_code=False,
        allow_pickle=False,
        token_env=None,
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


def _check_probes(loaded: LoadedModel, probes: Any) -> None:
    """``probes`` are for tensor models: a non-empty torch.Tensor batch."""
    if probes is None:
        return
    import torch

    if loaded.tokenizer is not None or loaded.processor is not None:
        raise BundleError(
            f"probes= was given for {loaded.model_id!r}, which takes text or media through "
            "its tokenizer or processor: its probes are tether's fixed ones.",
            "Leave probes unset for this model; probes= is for tensor models "
            "(PyTorchModelHubMixin nn.Modules).",
        )
    if not isinstance(probes, torch.Tensor) or probes.dim() < 1 or len(probes) == 0:
        raise BundleError(
            f"probes= must be a non-empty torch.Tensor batch (one probe per row), got "
            f"{type(probes).__name__}.",
            "Pass e.g. probes=torch.randn(8, in_features).",
        )


def _check_reproduces(
    loaded: LoadedModel, tmp: Path, manifest: Manifest, tolerance: Tolerance, probes: Any = None
) -> Fingerprint:
    """Reload what was written and compare it with the model in memory.

    The unfinished bundle is loaded with ``load_checkpoint`` (every guard but the
    manifest's, since the manifest is not written yet); the class check runs here.
    Returns the reloaded model's fingerprint: the bundle records what it reloads as.
    """
    in_memory = compute_fingerprint(loaded, inputs=probes)
    reloaded = load_checkpoint(
        ModelSpec.from_dict(
            dict(manifest.spec, source=str(tmp), trust_remote_code=loaded.spec.trust_remote_code)
        )
    )
    check_bundle_class(manifest, reloaded)
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
    return {
        rel: {"sha256": sha256_file(root / rel), "size": (root / rel).stat().st_size}
        for rel in sorted(present_files(root))
    }
