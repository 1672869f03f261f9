"""``pull()``: a bundle from a hub, pinned to one commit and verified before it is used.

The revision (branch, tag or commit) is resolved to a commit first and everything is
downloaded at that commit, so a branch moving during the download cannot mix two
bundles. Then the bundle is verified in full (``tether.verify``: every file's sha256,
a reload, the fingerprint recomputed): a file changed on the hub is caught here, before
anything runs on the model's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.bundles.verify import VerificationReport, verify
from tether.errors import VerificationError
from tether.hub.client import hub_errors


@dataclass
class PullResult:
    """What was pulled: the local directory, the commit, and the verification report."""

    repo_id: str
    commit: str
    path: Path
    report: VerificationReport

    @property
    def ok(self) -> bool:
        return self.report.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "commit": self.commit,
            "path": str(self.path),
            "ok": self.ok,
            "report": self.report.to_dict(),
        }

    def format(self) -> str:
        return f"pulled {self.repo_id} at commit {self.commit} into {self.path}\n" + (
            self.report.format()
        )


def pull(
    repo_id: str,
    revision: str | None = None,
    local_dir: str | Path | None = None,
    *,
    trust_remote_code: bool = False,
    check: bool = True,
    token: str | None = None,
    cache_dir: str | Path | None = None,
    endpoint: str | None = None,
) -> PullResult:
    """Download the bundle ``repo_id`` at ``revision`` and verify it.

    Args:
        revision: branch, tag or commit (default the main branch).
        local_dir: download into this directory instead of the HF cache.
        trust_remote_code: run the bundle's custom code to reload it (review it first).
        check: raise VerificationError when the bundle does not verify; with False the
            result's report says what differs.
        token: default huggingface_hub's own (HF_TOKEN, ``hf auth login``).
        cache_dir: the HF cache to download into (default huggingface_hub's).
        endpoint: the hub's URL, as for ``HfApi(endpoint=)``; default ``HF_ENDPOINT``
            (which huggingface_hub reads once, at import).

    Raises:
        HubAuthError, HubNotFoundError, HubError: the hub refused a request.
        VerificationError: (``check=True``) a file or the outputs differ from the manifest.
        UntrustedCustomCodeError: custom code without ``trust_remote_code=True``.
    """
    from huggingface_hub import HfApi, snapshot_download

    with hub_errors(repo_id, "pull", token, endpoint):
        api = HfApi(endpoint=endpoint)
        commit = str(api.repo_info(repo_id, revision=revision, token=token).sha)
        path = Path(
            snapshot_download(
                repo_id,
                revision=commit,
                local_dir=str(local_dir) if local_dir is not None else None,
                cache_dir=str(cache_dir) if cache_dir is not None else None,
                token=token,
                endpoint=endpoint,
            )
        )
    overrides: dict[str, Any] = {"trust_remote_code": True} if trust_remote_code else {}
    report = verify(path, **overrides)
    report.bundle, report.commit = f"{repo_id}@{commit}", commit
    result = PullResult(repo_id, commit, path, report)
    if check and not report.ok:
        raise VerificationError(
            f"{repo_id} at commit {commit} does not verify:\n{report.format()}",
            "Do not load it: push the bundle again from a trusted copy, or pull another revision.",
            path=str(path),
        )
    return result
