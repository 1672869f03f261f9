"""``push()``: a bundle to a Hugging Face–compatible hub in one commit, then checked there.

The bundle is checked before it leaves (every listed file unchanged, nothing unlisted),
uploaded with one ``create_commit`` on top of the branch head it was planned against
(a concurrent push makes it fail instead of mixing two bundles), and then what the hub
holds at the new commit is compared with the manifest file by file: an LFS file by the
sha256 the hub records for it, a regular (small) file by downloading and hashing it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import HubIntegrityError
from tether.hub.client import hub_errors
from tether.models.inspection import sha256_file
from tether.models.manifest import (
    DOC_FILES,
    IGNORED_FILES,
    MANIFEST_NAME,
    check_files_on_load,
    read_manifest,
)


@dataclass
class PushResult:
    """Where a bundle went and what was checked there (holds no token)."""

    repo_id: str
    revision: str
    commit: str
    url: str
    files: int
    bytes: int
    #: Files checked by the sha256 the hub records for LFS files, and by download.
    checked_by_lfs_sha256: list[str] = field(default_factory=list)
    checked_by_download: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def format(self) -> str:
        return (
            f"pushed {self.files} files ({self.bytes / 1e6:.1f} MB) to {self.repo_id} "
            f"@ {self.revision}: commit {self.commit}\n"
            f"checked on the hub: {len(self.checked_by_lfs_sha256)} file(s) by their LFS "
            f"sha256, {len(self.checked_by_download)} downloaded and hashed; all match "
            "the manifest\n"
            f"{self.url}"
        )


def push(
    bundle: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Upload a bundle to ``repo_id`` in one commit and check the hub holds it exactly.

    Args:
        bundle: a bundle directory (written by ``tether.save``).
        repo_id: ``org/name``; created if missing (``private`` applies then).
        revision: the branch to commit to (created from the main branch if missing);
            default the main branch.
        commit_message: default names the bundle's class.
        token: default huggingface_hub's own (HF_TOKEN, ``hf auth login``); used for
            the calls only, never stored.
        endpoint: the hub's URL, as for ``HfApi(endpoint=)``; default ``HF_ENDPOINT``
            (which huggingface_hub reads once, at import).

    Returns:
        A PushResult with the commit id.

    Raises:
        BundleError: the bundle changed since it was saved (nothing is uploaded).
        HubAuthError, HubNotFoundError, HubError: the hub refused a request.
        HubIntegrityError: what the hub holds at the new commit differs from the manifest.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    root = Path(bundle).expanduser().resolve()
    manifest = read_manifest(root)
    check_files_on_load(root, manifest)  # never publish a bundle that would not load
    expected = _expected_hashes(root, manifest.files)
    api = HfApi(endpoint=endpoint)
    branch = revision or "main"
    with hub_errors(repo_id, "push to", token, endpoint):
        url = str(api.create_repo(repo_id, private=private, exist_ok=True, token=token))
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True, token=token)
        parent = api.repo_info(repo_id, revision=branch, token=token).sha
        present = api.list_repo_files(repo_id, revision=parent, token=token) if parent else []
        stale = sorted(set(present) - set(expected) - IGNORED_FILES)
        operations: list[Any] = [
            CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(root / rel))
            for rel in sorted(expected)
        ]
        operations += [CommitOperationDelete(path_in_repo=rel) for rel in stale]
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or f"tether push: {manifest.class_name} bundle",
            revision=branch,
            parent_commit=parent,
            token=token,
        )
    commit = str(info.oid)
    by_lfs, by_download = check_remote(repo_id, commit, expected, token=token, endpoint=endpoint)
    return PushResult(
        repo_id=repo_id,
        revision=branch,
        commit=commit,
        url=url,
        files=len(expected),
        bytes=sum((root / rel).stat().st_size for rel in expected),
        checked_by_lfs_sha256=by_lfs,
        checked_by_download=by_download,
        deleted=stale,
    )


def _expected_hashes(root: Path, files: dict[str, dict[str, Any]]) -> dict[str, str]:
    """path -> sha256 the hub must hold: the manifest's, the card as it is now (a card
    may be edited after saving), and the manifest file itself."""
    expected = {rel: str(meta["sha256"]) for rel, meta in files.items()}
    for rel in DOC_FILES & set(files):
        expected[rel] = sha256_file(root / rel)
    expected[MANIFEST_NAME] = sha256_file(root / MANIFEST_NAME)
    return expected


def check_remote(
    repo_id: str,
    commit: str,
    expected: dict[str, str],
    *,
    token: str | None = None,
    endpoint: str | None = None,
) -> tuple[list[str], list[str]]:
    """Compare the files of ``repo_id`` at ``commit`` with ``expected`` (path -> sha256)
    on the hub ``endpoint`` (default ``HF_ENDPOINT``).

    Returns the paths checked by LFS sha256 and those downloaded and hashed.

    Raises:
        HubIntegrityError: a file differs, is missing, or the commit holds files the
            bundle does not (which loading would refuse).
    """
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi(endpoint=endpoint)
    by_lfs, by_download, changed = [], [], []
    with hub_errors(repo_id, "check", token, endpoint):
        tree = {
            entry.path: entry
            for entry in api.list_repo_tree(repo_id, revision=commit, recursive=True, token=token)
            if hasattr(entry, "lfs")  # files; folders have no lfs attribute
        }
        with tempfile.TemporaryDirectory(prefix="tether-push-check-") as tmp:
            for rel, sha256 in sorted(expected.items()):
                entry = tree.get(rel)
                if entry is None:
                    continue
                if entry.lfs is not None:
                    by_lfs.append(rel)
                    held = entry.lfs.sha256
                else:
                    by_download.append(rel)
                    held = sha256_file(
                        Path(
                            hf_hub_download(
                                repo_id,
                                rel,
                                revision=commit,
                                cache_dir=tmp,
                                token=token,
                                endpoint=endpoint,
                            )
                        )
                    )
                if held != sha256:
                    changed.append(rel)
    missing = sorted(set(expected) - set(tree))
    extra = sorted(set(tree) - set(expected) - IGNORED_FILES)
    if changed or missing or extra:
        problems = [
            f"{label}: {', '.join(names)}"
            for label, names in (
                ("differ from the manifest", changed),
                ("missing", missing),
                ("not in the bundle", extra),
            )
            if names
        ]
        raise HubIntegrityError(
            f"{repo_id} at commit {commit} does not hold the bundle: files "
            + "; ".join(problems)
            + ".",
            "Push the bundle again; if it keeps differing, the hub alters uploads "
            "(check its storage), so do not load from it.",
            repo_id=repo_id,
        )
    return by_lfs, by_download
