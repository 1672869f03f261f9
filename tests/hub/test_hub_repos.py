"""Repo-level calls huggingface_hub's own suite relies on, with the unmodified client:
``repo_exists`` / ``file_exists`` for ids without a namespace, case-insensitive ids,
``move_repo``, ``auth_check``, ``super_squash_history``, ``.gitignore`` and
``.gitattributes`` honoured by the preupload answer, the README metadata check, and the
request id quoted in errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from hub_server import ThreadHub


def test_missing_repos_answer_not_found(hub: ThreadHub) -> None:
    api = hub.api()
    with pytest.raises(RepositoryNotFoundError) as err:
        api.model_info("tether/never-made")
    assert not api.repo_exists("no-namespace")
    assert not api.file_exists("no-namespace", "x.txt")
    assert not api.revision_exists("no-namespace", "main")
    with pytest.raises(RepositoryNotFoundError):
        api.list_repo_commits("no-namespace")
    api.create_repo("tree", exist_ok=True)  # its refs route looks like a one-part id's tree
    assert [b.name for b in api.list_repo_refs("tether/tree").branches] == ["main"]
    request_id = err.value.response.headers["X-Request-Id"]
    assert f"(Request ID: {request_id})" in str(err.value)


def test_repo_ids_are_case_insensitive(hub: ThreadHub) -> None:
    api = hub.api()
    api.create_repo("CaSe-Repo", exist_ok=True)
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="tether/case-repo")
    assert "x.txt" in api.list_repo_files("tether/CASE-REPO")
    assert str(api.create_repo("case-REPO", exist_ok=True)).endswith("/tether/CaSe-Repo")


def test_move_repo_and_auth_check(hub: ThreadHub) -> None:
    api = hub.api()
    api.create_repo("before-move", repo_type="dataset", exist_ok=True)
    api.create_repo("taken", repo_type="dataset", exist_ok=True)
    with pytest.raises(HfHubHTTPError, match="A dataset repository called tether/taken"):
        api.move_repo("tether/before-move", "tether/taken", repo_type="dataset")
    api.move_repo("tether/before-move", "tether/after-move", repo_type="dataset")
    api.auth_check("tether/after-move", repo_type="dataset")
    with pytest.raises(RepositoryNotFoundError):
        api.auth_check("tether/before-move", repo_type="dataset")


def test_super_squash_history(hub: ThreadHub) -> None:
    api = hub.api()
    api.create_repo("squash", exist_ok=True)
    for n in range(3):
        api.upload_file(path_or_fileobj=b"%d" % n, path_in_repo="f.txt", repo_id="tether/squash")
    api.create_branch("tether/squash", branch="keep")
    api.super_squash_history("tether/squash")
    main = api.list_repo_commits("tether/squash")
    assert [c.title for c in main] == ["Super-squash branch 'main' using huggingface_hub"]
    assert len(api.list_repo_commits("tether/squash", revision="keep")) == 4
    assert hub.download("tether/squash", "f.txt").read_bytes() == b"2"


def test_gitignore_and_gitattributes_are_honoured(hub: ThreadHub, tmp_path: Path) -> None:
    api = hub.api()
    api.create_repo("patterns", exist_ok=True)
    api.create_commit(
        "tether/patterns",
        [
            CommitOperationAdd(".gitignore", b"*.log\nbuild/\n"),
            CommitOperationAdd(".gitattributes", b"*.png filter=lfs diff=lfs merge=lfs -text\n"),
        ],
        commit_message="patterns",
    )
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.txt").write_text("built")
    (tmp_path / "run.log").write_text("log")
    (tmp_path / "image.png").write_bytes(b"image data")
    (tmp_path / "keep.txt").write_text("kept")
    api.upload_folder(folder_path=str(tmp_path), repo_id="tether/patterns")
    info = api.model_info("tether/patterns", files_metadata=True)
    files = {s.rfilename: s for s in info.siblings}

    assert sorted(files) == [".gitattributes", ".gitignore", "image.png", "keep.txt"]
    assert files["image.png"].lfs is not None and files["keep.txt"].lfs is None


def test_readme_metadata_is_checked(hub: ThreadHub) -> None:
    api = hub.api()
    api.create_repo("cards", exist_ok=True)
    readme = CommitOperationAdd("README.md", b"---\nmodel-index: foo\n---\n# card\n")
    with pytest.raises(ValueError, match='"model-index" must be an array'):
        api.create_commit("tether/cards", [readme], commit_message="bad card")
    with pytest.warns(UserWarning, match="empty or missing yaml metadata"):
        api.create_commit(
            "tether/cards", [CommitOperationAdd("README.md", b"# card")], commit_message="bare"
        )
