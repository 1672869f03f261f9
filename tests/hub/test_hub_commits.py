"""huggingface.co's commit and revision semantics that clients rely on, with the
unmodified client: commits without ``parent_commit`` land on the current head (serialised),
``HEAD`` and short commit ids, ``/raw/`` URLs, copies, folder deletes, the preupload
``oid`` that skips unchanged files, ``lastCommit`` in trees, refused paths and ref names,
one server per data directory, stale uploads swept."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationCopy, CommitOperationDelete
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, RevisionNotFoundError

from hub_server import ThreadHub

WRITER = """
from huggingface_hub import HfApi, CommitOperationAdd
api = HfApi()
for i in range(5):
    api.create_commit("tether/serialised", [CommitOperationAdd(f"w{n}-{i}.txt", b"%d" % i)],
                      commit_message=f"writer {n} commit {i}")
"""


def test_commits_without_parent_all_land(hub: ThreadHub) -> None:
    """4 processes x 5 commits, none naming a parent: all 20 land, one after another."""
    api = hub.api()
    api.create_repo("serialised", exist_ok=True)
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda n: hub.client(f"n = {n}\n" + WRITER), range(4)))
    files = api.list_repo_files("tether/serialised")
    commits = api.list_repo_commits("tether/serialised")

    assert all(r.returncode == 0 for r in runs)
    assert sorted(f for f in files if f.startswith("w")) == sorted(
        f"w{n}-{i}.txt" for n in range(4) for i in range(5)
    )
    assert len(commits) == 21, sorted(c.title for c in commits)  # and the initial one


def test_stale_parent_commit_is_still_refused(hub: ThreadHub) -> None:
    api = hub.api()
    api.create_repo("cas", exist_ok=True)
    first = api.model_info("tether/cas").sha
    api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id="tether/cas")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            "tether/cas",
            [CommitOperationAdd("b.txt", b"b")],
            commit_message="m",
            parent_commit=first,
        )
    assert err.value.response.status_code == 412


def test_head_short_sha_and_raw_urls(hub: ThreadHub) -> None:
    api = hub.api()
    api.create_repo("revs", exist_ok=True)
    info = api.upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id="tether/revs")
    sha = info.oid
    by_head = hub.download("tether/revs", "a.txt", revision="HEAD")
    short = api.model_info("tether/revs", revision=sha[:7])
    raw = httpx.get(f"{hub.endpoint}/tether/revs/raw/{sha[:10]}/a.txt")

    assert by_head.read_bytes() == b"hello"
    assert short.sha == sha
    assert raw.status_code == 200 and raw.content == b"hello"


def test_copy_of_an_lfs_file_and_folder_delete_without_slash(hub: ThreadHub) -> None:
    api = hub.api()
    api.create_repo("copies", exist_ok=True)
    weights = os.urandom(2048)
    api.create_commit(
        "tether/copies",
        [
            CommitOperationAdd("w.bin", weights),
            CommitOperationAdd("sub/a.txt", b"a"),
            CommitOperationAdd("sub/deeper/b.txt", b"b"),
            CommitOperationAdd("subway.txt", b"not in sub"),
        ],
        commit_message="add",
    )
    api.create_commit(
        "tether/copies",
        [CommitOperationCopy("w.bin", "copy/w.bin"), CommitOperationDelete("sub")],
        commit_message="copy and delete a folder",
    )
    files = api.list_repo_files("tether/copies")
    tree = {f.path: f for f in api.list_repo_tree("tether/copies", recursive=True)}

    assert files == [".gitattributes", "copy/w.bin", "subway.txt", "w.bin"]
    assert tree["copy/w.bin"].lfs is not None and tree["copy/w.bin"].lfs == tree["w.bin"].lfs
    assert hub.download("tether/copies", "copy/w.bin").read_bytes() == weights


def test_unchanged_upload_folder_commits_nothing(hub: ThreadHub, tmp_path: Path) -> None:
    """The preupload answer's ``oid`` lets the client drop unchanged files."""
    api = hub.api()
    api.create_repo("same", exist_ok=True)
    (tmp_path / "w.bin").write_bytes(os.urandom(4096))
    (tmp_path / "config.json").write_text('{"a": 1}')
    api.upload_folder(folder_path=str(tmp_path), repo_id="tether/same")
    before = api.list_repo_commits("tether/same")
    api.upload_folder(folder_path=str(tmp_path), repo_id="tether/same")
    (tmp_path / "config.json").write_text('{"a": 2}')
    api.upload_folder(folder_path=str(tmp_path), repo_id="tether/same")
    after = api.list_repo_commits("tether/same")

    assert len(after) == len(before) + 1  # only the change made a commit


def test_tree_expand_gives_last_commit(hub: ThreadHub) -> None:
    api = hub.api()
    api.create_repo("expand", exist_ok=True)
    one = api.upload_file(path_or_fileobj=b"1", path_in_repo="d/one.txt", repo_id="tether/expand")
    two = api.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id="tether/expand")
    tree = {f.path: f for f in api.list_repo_tree("tether/expand", expand=True)}

    assert tree["two.txt"].last_commit.oid == two.oid
    assert tree["d"].last_commit.oid == one.oid
    assert tree["d"].last_commit.title == "Upload d/one.txt with huggingface_hub"
    assert tree[".gitattributes"].last_commit.title == "initial commit"


@pytest.mark.parametrize("path", ["..\\ddd", "a/../b.txt", ".git/config", "x/.cache/y"])
def test_paths_the_client_refuses_are_refused(hub: ThreadHub, path: str) -> None:
    api = hub.api()
    api.create_repo("paths", exist_ok=True)
    with pytest.raises((HfHubHTTPError, ValueError)) as err:  # the client refuses some itself
        api.create_commit("tether/paths", [CommitOperationAdd(path, b"x")], commit_message="m")
    if isinstance(err.value, HfHubHTTPError):
        assert err.value.response.status_code == 422
    assert path not in api.list_repo_files("tether/paths")


@pytest.mark.parametrize("tag", ["invalid tag", "a..b", "x~1", "-x", "end/", "v1.lock", "HEAD"])
def test_ref_names_git_refuses_are_refused(hub: ThreadHub, tag: str) -> None:
    api = hub.api()
    api.create_repo("tags", exist_ok=True)
    with pytest.raises(BadRequestError, match="Invalid tag name"):
        api.create_tag("tether/tags", tag=tag)
    with pytest.raises(BadRequestError, match="Invalid branch name"):
        api.create_branch("tether/tags", branch=tag.replace("HEAD", "HEAD"))


def test_a_second_server_on_the_same_data_is_refused(hub: ThreadHub) -> None:
    from tether.hub.server import ServerConfig
    from tether.hub.server.app import open_state
    from tether.hub.server.datalock import DataDirLockedError

    config = ServerConfig(data_dir=hub.data, public_url="http://127.0.0.1:1")
    with pytest.raises(DataDirLockedError) as err:
        open_state(config)
    assert err.value.path == hub.data / "hub.lock" and err.value.holder == os.getpid()


def test_stale_uploads_are_swept(tmp_path: Path) -> None:
    from tether.hub.server.lfs import STALE_UPLOAD_S, remove_stale

    old, fresh = tmp_path / "1-abc", tmp_path / "2-def"
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "part-00001").write_bytes(b"x")
    then = time.time() - STALE_UPLOAD_S - 60
    for f in (old, old / "part-00001"):
        os.utime(f, (then, then))
    assert remove_stale(tmp_path, STALE_UPLOAD_S) == [old]
    assert not old.exists() and fresh.exists()


def test_create_pr_opens_a_pull_request_ref(hub: ThreadHub) -> None:
    """``create_pr=True``: the commit lands on a new ``refs/pr/N``, main is untouched."""
    api = hub.api()
    api.create_repo("prs", exist_ok=True)
    main_before = api.model_info("tether/prs").sha
    first = api.upload_file(
        path_or_fileobj=b"proposed", path_in_repo="p.txt", repo_id="tether/prs", create_pr=True
    )
    second = api.create_commit(
        "tether/prs", [CommitOperationAdd("q.txt", b"q")], commit_message="two", create_pr=True
    )
    refs = api.list_repo_refs("tether/prs", include_pull_requests=True)
    on_pr = api.list_repo_commits("tether/prs", revision="refs/pr/1", formatted=True)

    assert (first.pr_revision, first.pr_num, second.pr_num) == ("refs/pr/1", 1, 2)
    assert first.pr_url == f"{hub.endpoint}/tether/prs/discussions/1"
    assert api.model_info("tether/prs").sha == main_before
    assert "p.txt" not in api.list_repo_files("tether/prs")
    assert hub.download("tether/prs", "p.txt", revision="refs/pr/1").read_bytes() == b"proposed"
    assert [r.ref for r in refs.pull_requests] == ["refs/pr/1", "refs/pr/2"]
    assert [b.name for b in refs.branches] == ["main"]
    assert on_pr[0].formatted_title == "Upload p.txt with huggingface_hub"
    with pytest.raises(RevisionNotFoundError):  # a pull request starts from a branch
        api.create_commit(
            "tether/prs",
            [CommitOperationAdd("r.txt", b"r")],
            commit_message="m",
            revision=main_before,
            create_pr=True,
        )
    assert len(api.list_repo_refs("tether/prs", include_pull_requests=True).pull_requests) == 2
