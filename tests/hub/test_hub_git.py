"""`git clone`, `git fetch`, `git lfs pull` and `git push` of hub repos with the real git
and git-lfs (routers/git.py, gitrepo.py, gitpush.py, the LFS batch); repos are made and
pushed commits checked with huggingface_hub.

Credentials reach git through a credential helper reading the token from the environment,
so no token is written into a URL, a config file or a command line.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dulwich.objects import Commit as DulwichCommit
from dulwich.objects import Tree

from conftest import under_ci
from hub_server import ThreadHub
from tether.hub.server.gitobjects import commit_oid, git_blob_sha1, git_trees, lfs_pointer

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
#: Without git-lfs the LFS tests skip locally; under CI (which installs it) they fail.
needs_lfs = pytest.mark.skipif(
    shutil.which("git-lfs") is None and not under_ci(), reason="needs git-lfs (apt)"
)
HELPER = '!f() { echo username=git; echo "password=$HUB_TEST_TOKEN"; }; f'


@dataclass
class Git:
    """The git command line with a home of its own (no user or system config)."""

    home: Path

    def env(self, token: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "HF_"))}
        env.update(HOME=str(self.home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
        if token is not None:
            env["HUB_TEST_TOKEN"] = token
        return env

    def __call__(
        self, *args: str, cwd: Path | None = None, token: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        helper = ["-c", "credential.helper=", "-c", f"credential.helper={HELPER}"]
        out = subprocess.run(
            ["git", *(helper if token else []), *args],
            cwd=cwd,
            env=self.env(token),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"git {args[0]} failed ({out.returncode}): {out.stderr}")
        return out


@pytest.fixture
def git(tmp_path: Path) -> Iterator[Git]:
    home = tmp_path / "git-home"
    home.mkdir()
    tool = Git(home)
    tool("config", "--global", "user.email", "t@example.com")
    tool("config", "--global", "user.name", "t")
    if shutil.which("git-lfs"):
        # Clones hold the pointer files until `git lfs pull`, as GIT_LFS_SKIP_SMUDGE would.
        tool("lfs", "install", "--skip-smudge")
    yield tool


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(folder).parts
    }


def make_repo(hub: ThreadHub, tmp_path: Path, repo_id: str, **kw: Any) -> dict[str, Any]:
    """A repo of two commits (a small LFS file, normal files), a branch and a tag."""
    api = hub.api()
    api.create_repo(repo_id, **kw)
    repo_type = kw.get("repo_type")
    first = tmp_path / "first"
    (first / "sub").mkdir(parents=True)
    (first / "README.md").write_text("# git test\n")
    (first / "sub" / "notes.txt").write_text("first\n")
    weights = random.Random(7).randbytes(300_000)
    (first / "model.safetensors").write_bytes(weights)
    one = api.upload_folder(repo_id=repo_id, folder_path=first, repo_type=repo_type)
    api.create_tag(repo_id, tag="v1", revision=one.oid, repo_type=repo_type)
    api.create_branch(repo_id, branch="dev", revision=one.oid, repo_type=repo_type)
    two = api.upload_file(
        path_or_fileobj=b"second\n",
        path_in_repo="sub/notes.txt",
        repo_id=repo_id,
        repo_type=repo_type,
        commit_message="second notes",
    )
    return {"first": one.oid, "second": two.oid, "weights": weights}


def test_git_ids_are_the_ids_dulwich_computes() -> None:
    """gitobjects.py builds trees and commits by hand; git (here dulwich) must agree."""
    tree = {
        "a.txt": {"oid": git_blob_sha1(b"a\n")},
        "d/b.txt": {"oid": git_blob_sha1(b"b\n")},
        "d.txt": {"oid": git_blob_sha1(b"c\n")},  # sorts between "d" the folder and "d-"
        "d-x": {"oid": git_blob_sha1(b"")},
    }
    root, objects = git_trees(tree)
    inner = Tree()
    inner.add(b"b.txt", 0o100644, git_blob_sha1(b"b\n").encode())
    outer = Tree()
    for name, oid in (("a.txt", b"a\n"), ("d.txt", b"c\n"), ("d-x", b"")):
        outer.add(name.encode(), 0o100644, git_blob_sha1(oid).encode())
    outer.add(b"d", 0o040000, inner.id)
    assert root == outer.id.decode()
    assert set(objects) == {outer.id.decode(), inner.id.decode()}
    when = "2026-01-02T03:04:05.678901Z"
    oid = commit_oid("f" * 40, tree, "title", "alice", when, "body")
    commit = DulwichCommit()
    commit.tree = outer.id
    commit.parents = [b"f" * 40]
    commit.author = commit.committer = b"alice <alice@users.noreply.tether-hub>"
    commit.author_time = commit.commit_time = 1767323045
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"title\n\nbody\n"
    assert oid == commit.id.decode()


@needs_lfs
def test_clone_and_lfs_pull_give_the_pushed_files_commits_and_refs(
    hub: ThreadHub, git: Git, tmp_path: Path
) -> None:
    made = make_repo(hub, tmp_path, "tether/git-clone")
    clone = tmp_path / "clone"
    git("clone", f"{hub.endpoint}/tether/git-clone", str(clone))
    pointer = (clone / "model.safetensors").read_text()
    sha = hashlib.sha256(made["weights"]).hexdigest()
    assert pointer == (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize 300000\n"
    )
    git("lfs", "pull", cwd=clone)
    snapshot = hub.snapshot("tether/git-clone")
    assert files_of(clone) == files_of(snapshot)
    assert (clone / "model.safetensors").read_bytes() == made["weights"]
    log = git("log", "--format=%H %s", cwd=clone).stdout.splitlines()
    api_ids = [c.commit_id for c in hub.api().list_repo_commits("tether/git-clone")]
    assert (
        [line.split()[0] for line in log]
        == api_ids
        == [made["second"], made["first"], *api_ids[2:]]
    )
    remote = git("ls-remote", "origin", cwd=clone).stdout
    assert f"{made['second']}\trefs/heads/main" in remote
    assert f"{made['first']}\trefs/heads/dev" in remote
    assert f"{made['first']}\trefs/tags/v1" in remote
    assert git("show", "v1:sub/notes.txt", cwd=clone).stdout == "first\n"
    git("fsck", "--strict", cwd=clone)


def test_a_dataset_clones_under_datasets_with_or_without_dot_git(
    hub: ThreadHub, git: Git, tmp_path: Path
) -> None:
    made = make_repo(hub, tmp_path, "tether/git-data", repo_type="dataset")
    for url in ("datasets/tether/git-data", "datasets/tether/git-data.git"):
        clone = tmp_path / url.replace("/", "_")
        git("clone", f"{hub.endpoint}/{url}", str(clone))
        head = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
        assert head == made["second"]
        assert (clone / "sub" / "notes.txt").read_text() == "second\n"


@needs_lfs
def test_a_private_repo_clones_only_with_its_owners_token(
    hub: ThreadHub, git: Git, tmp_path: Path
) -> None:
    made = make_repo(hub, tmp_path, "tether/git-private", private=True)
    url = f"{hub.endpoint}/tether/git-private"
    anonymous = git("clone", url, str(tmp_path / "anon"), check=False)
    # A 401 with a Basic challenge: git asks for credentials (no terminal here, so it stops).
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr
    wrong = git("clone", url, str(tmp_path / "wrong"), token="hf_wrong", check=False)
    assert wrong.returncode != 0 and "Authentication failed" in wrong.stderr
    assert "hf_wrong" not in wrong.stderr
    other = hub.create_token(user="someone-else", scope="read", name="git-other")
    stranger = git("clone", url, str(tmp_path / "other"), token=other, check=False)
    assert stranger.returncode != 0 and other not in stranger.stderr
    clone = tmp_path / "clone"
    git("clone", url, str(clone), token=hub.token)
    git("lfs", "pull", cwd=clone, token=hub.token)
    assert (clone / "model.safetensors").read_bytes() == made["weights"]
    assert hub.token not in (clone / ".git" / "config").read_text()
    unauthorised = git("lfs", "pull", cwd=clone, check=False)
    assert hub.token not in unauthorised.stderr + unauthorised.stdout


def test_fetch_brings_a_commit_made_after_the_clone(
    hub: ThreadHub, git: Git, tmp_path: Path
) -> None:
    make_repo(hub, tmp_path, "tether/git-fetch")
    clone = tmp_path / "clone"
    git("clone", f"{hub.endpoint}/tether/git-fetch", str(clone))
    third = hub.api().upload_file(
        path_or_fileobj=b"third\n", path_in_repo="third.txt", repo_id="tether/git-fetch"
    )
    git("pull", "--ff-only", cwd=clone)
    assert git("rev-parse", "HEAD", cwd=clone).stdout.strip() == third.oid
    assert (clone / "third.txt").read_text() == "third\n"
    hub.api().delete_file("third.txt", repo_id="tether/git-fetch")
    git("pull", "--ff-only", cwd=clone)
    assert not (clone / "third.txt").exists()


def test_a_partial_clone_falls_back_to_a_whole_clone(
    hub: ThreadHub, git: Git, tmp_path: Path
) -> None:
    made = make_repo(hub, tmp_path, "tether/git-partial")
    clone = tmp_path / "clone"
    out = git("clone", "--filter=blob:none", f"{hub.endpoint}/tether/git-partial", str(clone))
    assert "filtering not recognized by server" in out.stderr
    assert git("rev-parse", "HEAD", cwd=clone).stdout.strip() == made["second"]
    shallow = tmp_path / "shallow"
    git("clone", "--depth", "1", f"{hub.endpoint}/tether/git-partial", str(shallow))
    assert git("rev-list", "--count", "HEAD", cwd=shallow).stdout.strip() == "1"


def clone_for_push(hub: ThreadHub, git: Git, tmp_path: Path, repo_id: str) -> Path:
    clone = tmp_path / "push-clone"
    git("clone", f"{hub.endpoint}/{repo_id}", str(clone))
    return clone


def commit_file(git: Git, clone: Path, path: str, content: bytes, message: str) -> str:
    target = clone / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    git("add", path, cwd=clone)
    git("commit", "-m", message, cwd=clone)
    return git("rev-parse", "HEAD", cwd=clone).stdout.strip()


def api_head(hub: ThreadHub, repo_id: str, revision: str = "main") -> str:
    return str(hub.api().list_repo_commits(repo_id, revision=revision)[0].commit_id)


@needs_lfs
def test_a_pushed_file_and_lfs_file_keep_the_clients_commit_ids(
    hub: ThreadHub, git: Git, tmp_path: Path
) -> None:
    repo_id = "tether/git-push"
    make_repo(hub, tmp_path, repo_id)
    clone = clone_for_push(hub, git, tmp_path, repo_id)
    git("lfs", "install", "--skip-smudge", cwd=clone)  # the pre-push hook that uploads
    git("lfs", "track", "*.dat", cwd=clone)
    weights = random.Random(11).randbytes(123_456)
    (clone / "data.dat").write_bytes(weights)
    git("add", ".gitattributes", "data.dat", cwd=clone)
    git("commit", "-m", "LFS data\n\nwith a body line", cwd=clone)
    (clone / "docs").mkdir()
    (clone / "docs" / "hello.txt").write_bytes("héllo\n".encode())
    git("add", "docs", cwd=clone)
    # Whatever git wrote is kept: another author, a time zone, a message without "\n".
    when, who = "2026-03-04T05:06:07+05:30", "Ünïcode Author <u@example.org>"
    git(
        "commit",
        "--cleanup=verbatim",
        "--date",
        when,
        "--author",
        who,
        "-m",
        "a small file",
        cwd=clone,
    )
    # Over git's http.postBuffer (1 MiB): git probes, then streams the pack chunked.
    text = ("".join(random.Random(3).choices("abcdefgh\n", k=6_000_000))).encode()
    commit_file(git, clone, "big.txt", text, "a regular file over 1 MiB")
    (clone / "sub" / "notes.txt").unlink()
    git("commit", "-am", "drop the notes", cwd=clone)
    push = git("push", "origin", "main", cwd=clone, token=hub.token)
    assert "main -> main" in push.stderr
    ours = git("log", "--format=%H", "-4", cwd=clone).stdout.split()
    commits = hub.api().list_repo_commits(repo_id)
    assert [c.commit_id for c in commits[:4]] == ours
    titles = ["drop the notes", "a regular file over 1 MiB", "a small file", "LFS data"]
    assert [c.title for c in commits[:4]] == titles
    assert commits[3].message == "with a body line"
    assert hub.download(repo_id, "big.txt").read_bytes() == text
    assert hub.download(repo_id, "data.dat").read_bytes() == weights
    assert hub.download(repo_id, "docs/hello.txt").read_bytes() == "héllo\n".encode()
    info = hub.api().get_paths_info(repo_id, ["data.dat", "sub/notes.txt"])
    assert [p.path for p in info] == ["data.dat"]
    assert info[0].lfs is not None and info[0].lfs.sha256 == hashlib.sha256(weights).hexdigest()
    again = tmp_path / "again"
    git("clone", f"{hub.endpoint}/{repo_id}", str(again))
    git("lfs", "pull", cwd=again)
    assert git("rev-parse", "HEAD", cwd=again).stdout.strip() == ours[0]
    assert files_of(again) == files_of(hub.snapshot(repo_id))
    assert (again / "data.dat").read_bytes() == weights
    shown = git("log", "-1", "--format=%an <%ae> %aI", "HEAD~2", cwd=again).stdout.strip()
    assert shown == f"{who} {when}"
    git("fsck", "--strict", cwd=again)


def test_a_push_needs_write_access(hub: ThreadHub, git: Git, tmp_path: Path) -> None:
    for args in (("create", "gitpushers"), ("add-member", "gitpushers", "rita", "--role", "read")):
        assert hub.run("hub", "org", *args).exit_code == 0
    assert (
        hub.run("hub", "org", "add-member", "gitpushers", "will", "--role", "write").exit_code == 0
    )
    will = hub.create_token(user="will", name="git-will")
    repo_id = "gitpushers/shared"
    hub.api(will).create_repo(repo_id)
    clone = clone_for_push(hub, git, tmp_path, repo_id)
    mine = commit_file(git, clone, "x.txt", b"x\n", "x")
    anonymous = git("push", "origin", "main", cwd=clone, check=False)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr
    refused = {
        "rita": hub.create_token(user="rita", name="git-rita"),
        "stranger": hub.create_token(user="git-stranger", name="git-stranger"),
        "read scope": hub.create_token(user="will", scope="read", name="git-will-r"),
    }
    for who, token in refused.items():
        out = git("push", "origin", "main", cwd=clone, token=token, check=False)
        assert out.returncode != 0, who
        assert "needs write access" in out.stderr or "read scope" in out.stderr, out.stderr
        assert "403" in out.stderr and token not in out.stderr
    assert api_head(hub, repo_id) != mine
    git("push", "origin", "main", cwd=clone, token=will)
    assert api_head(hub, repo_id) == mine


def test_a_push_behind_an_api_commit_is_refused_and_nothing_is_lost(
    hub: ThreadHub, git: Git, tmp_path: Path
) -> None:
    repo_id = "tether/git-push-race"
    make_repo(hub, tmp_path, repo_id)
    clone = clone_for_push(hub, git, tmp_path, repo_id)
    commit_file(git, clone, "mine.txt", b"mine\n", "mine")
    # Between the ref advertisement and the pack, an API commit moves main (a real race:
    # git runs the pre-push hook after it read the refs and before it sends).
    script = (
        "import os; from huggingface_hub import HfApi; "
        f"HfApi(endpoint={hub.endpoint!r}, token=os.environ['HUB_TEST_TOKEN']).upload_file("
        f"path_or_fileobj=b'race', path_in_repo='race.txt', repo_id={repo_id!r})"
    )
    hook = clone / ".git" / "hooks" / "pre-push"
    hook.write_text(f'#!/bin/sh\nHF_HUB_OFFLINE=0 exec {sys.executable} -c "{script}"\n')
    hook.chmod(0o755)
    raced = git("push", "origin", "main", cwd=clone, token=hub.token, check=False)
    assert raced.returncode != 0 and "[remote rejected]" in raced.stderr
    assert "fetch first" in raced.stderr
    hook.unlink()
    theirs = api_head(hub, repo_id)
    assert hub.download(repo_id, "race.txt").read_bytes() == b"race"
    forced = git("push", "--force", "origin", "main", cwd=clone, token=hub.token, check=False)
    assert forced.returncode != 0 and "non-fast-forward" in forced.stderr
    assert api_head(hub, repo_id) == theirs
    git("pull", "--rebase", cwd=clone)
    git("push", "origin", "main", cwd=clone, token=hub.token)
    commits = hub.api().list_repo_commits(repo_id)
    assert commits[0].commit_id == git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    assert commits[1].commit_id == theirs
    files = hub.api().list_repo_files(repo_id)
    assert "race.txt" in files and "mine.txt" in files


def test_what_the_hub_cannot_hold_is_refused(hub: ThreadHub, git: Git, tmp_path: Path) -> None:
    repo_id = "tether/git-push-bad"
    make_repo(hub, tmp_path, repo_id)
    before = api_head(hub, repo_id)
    clone = clone_for_push(hub, git, tmp_path, repo_id)
    pointer = lfs_pointer("ab" * 32, 10)
    cases = {
        ".cache/x.txt": "invalid path '.cache/x.txt'",
        "fake.txt": "LFS object " + "ab" * 32 + " was not uploaded",
        "run.sh": "run.sh in ",
        "link": "is a symlink",
    }
    for path, reason in cases.items():
        if path == "run.sh":
            (clone / path).write_text("#!/bin/sh\n")
            (clone / path).chmod(0o755)
        elif path == "link":
            (clone / path).symlink_to("README.md")
        else:
            (clone / path).parent.mkdir(exist_ok=True)
            (clone / path).write_bytes(pointer if path == "fake.txt" else b"x\n")
        git("add", path, cwd=clone)
        git("commit", "-m", path, cwd=clone)
        # --no-verify: past git-lfs's own pre-push check, so the hub is what refuses.
        out = git("push", "--no-verify", "origin", "main", cwd=clone, token=hub.token, check=False)
        assert out.returncode != 0 and "[remote rejected]" in out.stderr, out.stderr
        assert reason in out.stderr, out.stderr
        assert api_head(hub, repo_id) == before
        git("reset", "--hard", "HEAD~1", cwd=clone)
    git("checkout", "-b", "side", cwd=clone)
    commit_file(git, clone, "side.txt", b"side\n", "side")
    git("checkout", "main", cwd=clone)
    commit_file(git, clone, "main.txt", b"main\n", "main")
    git("merge", "--no-edit", "side", cwd=clone)
    merged = git("push", "origin", "main", cwd=clone, token=hub.token, check=False)
    assert merged.returncode != 0 and "is a merge commit" in merged.stderr
    assert api_head(hub, repo_id) == before


def test_a_new_branch_and_a_tag_are_pushed_and_deleted(
    hub: ThreadHub, git: Git, tmp_path: Path
) -> None:
    repo_id = "tether/git-push-refs"
    made = make_repo(hub, tmp_path, repo_id)
    clone = clone_for_push(hub, git, tmp_path, repo_id)
    git("checkout", "-b", "feature", cwd=clone)
    one = commit_file(git, clone, "f.txt", b"f\n", "feature one")
    two = commit_file(git, clone, "f.txt", b"ff\n", "feature two")
    git("tag", "v2", cwd=clone)
    git("push", "origin", "feature", "v2", cwd=clone, token=hub.token)
    refs = hub.api().list_repo_refs(repo_id)
    assert {b.name: b.target_commit for b in refs.branches}["feature"] == two
    assert {t.name: t.target_commit for t in refs.tags}["v2"] == two
    assert [c.commit_id for c in hub.api().list_repo_commits(repo_id, revision="feature")][:3] == [
        two,
        one,
        made["second"],
    ]
    git("tag", "v0", made["first"], cwd=clone)  # a commit the hub made
    git("push", "origin", "v0", cwd=clone, token=hub.token)
    git("tag", "-a", "v3", "-m", "annotated", cwd=clone)
    annotated = git("push", "origin", "v3", cwd=clone, token=hub.token, check=False)
    assert annotated.returncode != 0 and "only lightweight tags" in annotated.stderr
    default = git("push", "origin", ":main", cwd=clone, token=hub.token, check=False)
    assert default.returncode != 0 and "default branch" in default.stderr
    git("push", "origin", ":feature", ":v2", cwd=clone, token=hub.token)
    refs = hub.api().list_repo_refs(repo_id)
    assert "feature" not in {b.name for b in refs.branches}
    assert {t.name: t.target_commit for t in refs.tags} == {
        "v1": made["first"],
        "v0": made["first"],
    }
    for target, reason in (
        ("refs/heads/HEAD", "Invalid branch name 'HEAD'"),
        ("refs/notes/x", "only refs/heads/* and refs/tags/*"),
    ):
        out = git("push", "origin", f"HEAD:{target}", cwd=clone, token=hub.token, check=False)
        assert out.returncode != 0 and reason in out.stderr, out.stderr


def test_a_commit_stored_before_git_ids_clones_under_a_rebuilt_id(
    hub: ThreadHub, git: Git, tmp_path: Path
) -> None:
    """Commit ids used to be a hash over JSON; such a commit (made here by hand, as an
    older server stored it) is served as the git commit its fields describe."""
    from sqlalchemy import select, update

    from tether.hub.server.config import ServerConfig
    from tether.hub.server.db import Commit, Ref, Repo
    from tether.hub.server.serve import open_sessions

    made = make_repo(hub, tmp_path, "tether/git-legacy")
    legacy = hashlib.sha1(b"a commit id from before").hexdigest()
    config = ServerConfig(data_dir=hub.data, public_url=hub.endpoint)
    with open_sessions(config)() as session:
        repo = session.scalar(select(Repo).where(Repo.name == "git-legacy"))
        assert repo is not None
        head = session.scalar(select(Commit).where(Commit.oid == made["second"]))
        assert head is not None
        session.add(
            Commit(
                repo_pk=repo.id,
                oid=legacy,
                parent_oid=head.oid,
                title="legacy",
                author="tether",
                tree_json=head.tree_json,
            )
        )
        session.execute(
            update(Ref).where(Ref.repo_pk == repo.id, Ref.name == "main").values(commit_oid=legacy)
        )
        session.commit()
    clone = tmp_path / "clone"
    git("clone", f"{hub.endpoint}/tether/git-legacy", str(clone))
    log = git("log", "--format=%H %s", cwd=clone).stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in log][:2] == ["legacy", "second notes"]
    assert log[0].split()[0] != legacy and log[1].split()[0] == made["second"]
    git("fsck", "--strict", cwd=clone)


def test_basic_credentials_may_carry_the_token_as_user_name(hub: ThreadHub) -> None:
    """Some tools put the token in the user name and leave the password empty."""
    import base64

    import httpx

    for pair in (f"{hub.token}:", f"anyone:{hub.token}"):
        basic = base64.b64encode(pair.encode()).decode()
        answer = httpx.get(
            f"{hub.endpoint}/api/whoami-v2", headers={"Authorization": f"Basic {basic}"}
        )
        assert answer.status_code == 200 and answer.json()["name"] == "tether"
    wrong = base64.b64encode(b"anyone:hf_wrong").decode()
    answer = httpx.get(f"{hub.endpoint}/api/whoami-v2", headers={"Authorization": f"Basic {wrong}"})
    assert answer.status_code == 401 and "hf_wrong" not in answer.text


@needs_lfs
def test_a_200_mb_weight_clones_byte_identical(hub: ThreadHub, git: Git, tmp_path: Path) -> None:
    """The issue's size: 200 MB of deterministic bytes through upload, clone and lfs pull."""
    weights = tmp_path / "big.safetensors"
    digest = hashlib.sha256()
    rng = random.Random(200)
    with weights.open("wb") as out:
        for _ in range(200):
            block = rng.randbytes(1024 * 1024)
            digest.update(block)
            out.write(block)
    api = hub.api()
    api.create_repo("tether/git-big")
    api.upload_file(
        path_or_fileobj=weights, path_in_repo="big.safetensors", repo_id="tether/git-big"
    )
    weights.unlink()
    clone = tmp_path / "clone"
    git("clone", f"{hub.endpoint}/tether/git-big", str(clone))
    git("lfs", "pull", cwd=clone)
    assert (
        hashlib.sha256((clone / "big.safetensors").read_bytes()).hexdigest() == digest.hexdigest()
    )


def test_requests_git_would_not_send_are_refused_in_plain_text(
    hub: ThreadHub, tmp_path: Path
) -> None:
    import httpx

    make_repo(hub, tmp_path, "tether/git-odd")
    base = f"{hub.endpoint}/tether/git-odd"
    dumb = httpx.get(f"{base}/info/refs")
    assert dumb.status_code == 400 and "smart HTTP" in dumb.text
    assert dumb.headers["content-type"].startswith("text/plain")
    kind = {"Content-Type": "application/x-git-upload-pack-request"}
    garbage = httpx.post(f"{base}/git-upload-pack", content=b"zzzz-not-a-pkt-line", headers=kind)
    assert garbage.status_code == 400 and "git-upload-pack" in garbage.text
    unzipped = httpx.post(
        f"{base}/git-upload-pack", content=b"x", headers={**kind, "Content-Encoding": "gzip"}
    )
    assert unzipped.status_code == 400
    missing = httpx.get(f"{hub.endpoint}/tether/no-such-repo/info/refs?service=git-upload-pack")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/plain")
