"""Organisations (orgs.py, access.py): members with read, write and admin roles and a
non-member, on a private org repo, through every route, with the real huggingface_hub
client, the real git, and the `tether hub org` commands that make the org."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from hub_server import ThreadHub

ORG = "acme"
REPO = f"{ORG}/secret"


@dataclass
class Org:
    """The org's members' tokens (write scope unless named ``*_read``) and a stranger's."""

    hub: ThreadHub
    tokens: dict[str, str]
    weights: bytes

    def api(self, who: str) -> Any:
        return self.hub.api(self.tokens[who])


def run_ok(hub: ThreadHub, *args: str) -> str:
    result = hub.run("hub", "org", *args)
    assert result.exit_code == 0, result.output
    return str(result.output)


@pytest.fixture(scope="module")
def org(hub: ThreadHub) -> Org:
    """``acme`` with ada (admin), wes (write), rea (read); nob belongs to no org. Ada makes
    the private repo ``acme/secret`` with an LFS file."""
    run_ok(hub, "create", ORG)
    tokens = {}
    for user, role in (("ada", "admin"), ("wes", "write"), ("rea", "read")):
        run_ok(hub, "add-member", ORG, user, "--role", role)
        tokens[user] = hub.create_token(user=user, scope="write", name=f"{user}-w")
    tokens["ada_read"] = hub.create_token(user="ada", scope="read", name="ada-r")
    tokens["nob"] = hub.create_token(user="nob", scope="write", name="nob-w")
    weights = os.urandom(200_000)
    with pytest.MonkeyPatch.context() as patch:  # conftest's _online, for a module fixture
        from huggingface_hub import constants

        patch.setattr(constants, "HF_HUB_OFFLINE", False)
        admin = hub.api(tokens["ada"])
        admin.create_repo(REPO, private=True)
        admin.create_commit(
            REPO,
            operations=[
                CommitOperationAdd("model.safetensors", weights),
                CommitOperationAdd("config.json", b'{"a": 1}'),
            ],
            commit_message="weights",
        )
    return Org(hub=hub, tokens=tokens, weights=weights)


def status_of(call: Callable[[], Any]) -> int:
    """The HTTP status a client call was refused with (0 when it was not refused)."""
    try:
        call()
    except HfHubHTTPError as exc:
        assert exc.response is not None
        return exc.response.status_code
    return 0


def test_org_commands_keep_users_and_orgs_apart(hub: ThreadHub) -> None:
    """A namespace is a user's or an org's: the CLI refuses to make it both."""
    hub.create_token(user="uma", scope="read", name="uma")
    clash = hub.run("hub", "org", "create", "uma")
    assert clash.exit_code != 0 and "uma is a user's namespace" in clash.output
    run_ok(hub, "create", "orgs-cli")
    again = hub.run("hub", "org", "create", "orgs-cli")
    assert again.exit_code != 0 and "exists already" in again.output
    token_for_org = hub.run("hub", "token", "create", "--user", "orgs-cli")
    assert token_for_org.exit_code != 0 and "is an organisation" in token_for_org.output
    member_named_like_org = hub.run("hub", "org", "add-member", "orgs-cli", "orgs-cli")
    assert member_named_like_org.exit_code != 0
    run_ok(hub, "add-member", "orgs-cli", "uma", "--role", "write")
    run_ok(hub, "add-member", "orgs-cli", "uma", "--role", "admin")  # changes the role
    assert "orgs-cli\tuma\tadmin" in run_ok(hub, "list")
    run_ok(hub, "remove-member", "orgs-cli", "uma")
    assert "orgs-cli\t-\t-" in run_ok(hub, "list")
    missing = hub.run("hub", "org", "remove-member", "orgs-cli", "uma")
    assert missing.exit_code != 0 and "not a member" in missing.output


def test_whoami_lists_the_orgs_with_the_role(org: Org) -> None:
    for who, role in (("ada", "admin"), ("wes", "write"), ("rea", "read"), ("ada_read", "admin")):
        orgs = org.api(who).whoami()["orgs"]
        assert [(o["name"], o["roleInOrg"]) for o in orgs] == [(ORG, role)], who
    assert org.api("nob").whoami()["orgs"] == []


def test_hf_auth_whoami_prints_the_orgs(org: Org) -> None:
    """`hf auth whoami` (the client's command line) joins the org names."""
    script = "from huggingface_hub.cli.hf import main; main()"
    out = org.hub.client(
        f"import sys; sys.argv = ['hf', 'auth', 'whoami']; {script}", token=org.tokens["wes"]
    )
    assert "wes" in out.stdout and ORG in out.stdout


def read_all(org: Org, who: str, cache: Path) -> dict[str, Any]:
    """Every read route of the private repo, as ``who``."""
    api, hub = org.api(who), org.hub
    return {
        "download": hub.download(REPO, "model.safetensors", token=org.tokens[who], cache_dir=cache),
        "info": api.model_info(REPO),
        "tree": [f.path for f in api.list_repo_tree(REPO, recursive=True)],
        "paths": [p.path for p in api.get_paths_info(REPO, ["config.json", "nope"])],
        "commits": [c.title for c in api.list_repo_commits(REPO)],
        "refs": [b.name for b in api.list_repo_refs(REPO).branches],
    }


@pytest.mark.parametrize("who", ["ada", "wes", "rea", "ada_read"])
def test_every_member_reads_the_private_repo(org: Org, who: str, tmp_path: Path) -> None:
    got = read_all(org, who, tmp_path / "cache")
    assert got["download"].read_bytes() == org.weights
    assert got["info"].private is True
    assert got["tree"] == [".gitattributes", "config.json", "model.safetensors"]
    assert got["paths"] == ["config.json"]
    assert got["commits"][0] == "weights"
    assert "main" in got["refs"]


@pytest.mark.parametrize("who", ["nob", None])
def test_a_non_member_sees_the_private_repo_as_missing(
    org: Org, who: str | None, tmp_path: Path
) -> None:
    token: str | bool = org.tokens[who] if who else False
    api, hub = org.hub.api(token), org.hub
    calls: list[Callable[[], Any]] = [
        lambda: hub.download(REPO, "config.json", token=token, cache_dir=tmp_path),
        lambda: api.model_info(REPO),
        lambda: list(api.list_repo_tree(REPO)),
        lambda: api.get_paths_info(REPO, ["config.json"]),
        lambda: api.list_repo_commits(REPO),
        lambda: api.list_repo_refs(REPO),
        lambda: api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=REPO),
        lambda: api.create_branch(REPO, branch="stranger"),
    ]
    for call in calls:
        with pytest.raises(RepositoryNotFoundError):
            call()
    status = 404 if who else 401
    assert raw(org, who, "GET", f"/api/models/{REPO}/xet-write-token/main").status_code == status
    assert lfs_batch(org, who, "download").status_code == status


def raw(org: Org, who: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {org.tokens[who]}"} if who else {}
    return httpx.request(method, org.hub.endpoint + path, headers=headers, **kw)


def lfs_batch(org: Org, who: str | None, operation: str) -> httpx.Response:
    body = {"operation": operation, "objects": [{"oid": "a" * 64, "size": 1}]}
    return raw(org, who, "POST", f"/{REPO}.git/info/lfs/objects/batch", json=body)


@pytest.mark.parametrize("who", ["ada", "wes"])
def test_writers_commit_lfs_and_xet_and_make_refs(
    org: Org, who: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    api = org.api(who)
    big = os.urandom(300_000)
    xet = api.create_commit(
        REPO, operations=[CommitOperationAdd(f"{who}-xet.safetensors", big)], commit_message="x"
    )
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # read at call time
    lfs = api.create_commit(
        REPO, operations=[CommitOperationAdd(f"{who}-lfs.bin", b"\0" + big)], commit_message="l"
    )
    api.create_branch(REPO, branch=f"{who}-branch", revision=xet.oid)
    api.create_tag(REPO, tag=f"{who}-tag", revision=lfs.oid)
    api.delete_branch(REPO, branch=f"{who}-branch")
    api.create_repo(f"{ORG}/made-by-{who}", private=True)
    for name, want in ((f"{who}-xet.safetensors", big), (f"{who}-lfs.bin", b"\0" + big)):
        got = org.hub.download(REPO, name, token=org.tokens["rea"], cache_dir=tmp_path)
        assert got.read_bytes() == want
    assert f"{who}-tag" in [t.name for t in api.list_repo_refs(REPO).tags]
    assert raw(org, who, "GET", f"/api/models/{REPO}/xet-write-token/main").status_code == 200
    assert lfs_batch(org, who, "upload").status_code == 200


@pytest.mark.parametrize("who", ["rea", "ada_read"])
def test_read_role_and_read_scope_are_refused_every_write(org: Org, who: str) -> None:
    """A read member, and the admin's own read-scope token: the scope caps the role."""
    api = org.api(who)
    calls: list[Callable[[], Any]] = [
        lambda: api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=REPO),
        lambda: api.create_branch(REPO, branch=f"{who}-b"),
        lambda: api.create_tag(REPO, tag=f"{who}-t"),
        lambda: api.delete_branch(REPO, branch="main"),
        lambda: api.create_repo(f"{ORG}/by-{who}"),
        lambda: api.update_repo_settings(REPO, private=False),
        lambda: api.delete_repo(REPO),
        lambda: api.move_repo(REPO, f"{ORG}/moved-by-{who}"),
    ]
    assert [status_of(call) for call in calls] == [403] * len(calls)
    assert raw(org, who, "GET", f"/api/models/{REPO}/xet-write-token/main").status_code == 403
    assert lfs_batch(org, who, "upload").status_code == 403
    message = raw(org, who, "PUT", f"/api/models/{REPO}/settings", json={"private": False})
    expected = "read scope" if who == "ada_read" else "needs admin access"
    assert expected in message.json()["error"]
    assert org.api("ada").model_info(REPO).private is True


def test_settings_delete_and_move_need_admin(org: Org, tmp_path: Path) -> None:
    ada, wes = org.api("ada"), org.api("wes")
    ada.create_repo(f"{ORG}/settings", private=True)
    ada.upload_file(path_or_fileobj=b"kept", path_in_repo="kept.txt", repo_id=f"{ORG}/settings")
    assert status_of(lambda: wes.update_repo_settings(f"{ORG}/settings", private=False)) == 403
    assert status_of(lambda: wes.delete_repo(f"{ORG}/settings")) == 403
    assert status_of(lambda: wes.move_repo(f"{ORG}/settings", "wes/settings")) == 403
    # admin in acme, but not in wes's namespace
    assert status_of(lambda: ada.move_repo(f"{ORG}/settings", "wes/settings")) == 403
    ada.update_repo_settings(f"{ORG}/settings", private=False)
    assert org.api("nob").model_info(f"{ORG}/settings").private is False
    # public: anyone reads, only members write
    nob_write = lambda: org.api("nob").upload_file(  # noqa: E731
        path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"{ORG}/settings"
    )
    assert status_of(nob_write) == 403
    ada.move_repo(f"{ORG}/settings", "ada/moved")
    got = org.hub.download("ada/moved", "kept.txt", token=org.tokens["ada"], cache_dir=tmp_path)
    assert got.read_text() == "kept"
    with pytest.raises(RepositoryNotFoundError):
        ada.model_info(f"{ORG}/settings")
    assert status_of(lambda: ada.move_repo("ada/moved", f"{ORG}/secret")) == 409
    ada.move_repo("ada/moved", f"{ORG}/back")  # into the org: admin on both sides
    assert wes.list_repo_commits(f"{ORG}/back")[0].title.startswith("Upload")
    assert status_of(lambda: wes.delete_repo(f"{ORG}/back")) == 403
    ada.delete_repo(f"{ORG}/back")
    with pytest.raises(RepositoryNotFoundError):
        ada.model_info(f"{ORG}/back")


def test_removing_a_member_takes_the_access_away(org: Org, hub: ThreadHub) -> None:
    token = hub.create_token(user="leo", scope="write", name="leo")
    run_ok(hub, "add-member", ORG, "leo", "--role", "read")
    assert hub.api(token).model_info(REPO).private is True
    run_ok(hub, "remove-member", ORG, "leo")
    with pytest.raises(RepositoryNotFoundError):
        hub.api(token).model_info(REPO)
    assert hub.api(token).whoami()["orgs"] == []


def git(home: Path, token: str, *args: str, cwd: Path | None = None) -> Any:
    """git with a home of its own and the token from a credential helper reading the
    environment (as tests/hub/test_hub_git.py runs it), so it is in no URL or file."""
    helper = '!f() { echo username=git; echo "password=$HUB_TEST_TOKEN"; }; f'
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "HF_"))}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    env["HUB_TEST_TOKEN"] = token
    argv = ["git", "-c", "credential.helper=", "-c", f"credential.helper={helper}", *args]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_clone_of_the_private_org_repo_with_basic_auth(org: Org, tmp_path: Path) -> None:
    url = f"{org.hub.endpoint}/{REPO}"
    home, clone = tmp_path / "home", tmp_path / "clone"
    home.mkdir()
    if shutil.which("git-lfs"):
        git(home, "", "lfs", "install", "--skip-smudge")
    cloned = git(home, org.tokens["rea"], "clone", url, str(clone))
    assert cloned.returncode == 0, cloned.stderr
    assert (clone / "config.json").read_text() == '{"a": 1}'
    stranger = git(home, org.tokens["nob"], "clone", url, str(tmp_path / "nob"))
    assert stranger.returncode != 0 and "not found" in stranger.stderr.lower()
    assert org.tokens["nob"] not in stranger.stderr
    if shutil.which("git-lfs"):
        pulled = git(home, org.tokens["rea"], "lfs", "pull", cwd=clone)
        assert pulled.returncode == 0, pulled.stderr
        assert (clone / "model.safetensors").read_bytes() == org.weights


@pytest.mark.parametrize(
    ("user", "scope", "want"),
    [
        ("ada", "write", "ADMIN"),
        ("ada", "read", "READ"),
        ("wes", "write", "WRITE"),
        ("wes", "read", "READ"),
        ("rea", "write", "READ"),
        ("nob", "write", "NONE"),
        ("acme-outsider", "write", "NONE"),
    ],
)
def test_the_level_is_the_role_capped_by_the_scope(
    org: Org, user: str, scope: str, want: str
) -> None:
    """access.level, the one rule: own namespace admin, org role, token scope as a cap."""
    from tether.hub.server import access
    from tether.hub.server.config import ServerConfig
    from tether.hub.server.serve import open_sessions
    from tether.hub.server.tokens import Identity

    config = ServerConfig(data_dir=org.hub.data, public_url=org.hub.endpoint)
    with open_sessions(config)() as session:
        identity = Identity(user=user, scope=scope, token_name="t")
        assert access.level(session, identity, ORG) == access.Level[want]
        assert access.level(session, identity, user) == (
            access.Level.ADMIN if scope == "write" else access.Level.READ
        )
        assert access.level(session, None, ORG) == access.Level.NONE


def test_listings_and_the_web_page_show_an_org_repo_to_its_members_only(org: Org) -> None:
    """The finding routes and the web page follow the same rule as the repo routes."""
    import httpx

    for who, sees in (("rea", True), ("wes", True), ("ada_read", True), ("nob", False)):
        listed = [m.id for m in org.api(who).list_models(author=ORG)]
        assert (REPO in listed) is sees, who
        page = httpx.get(
            f"{org.hub.endpoint}/", cookies={"tether_hub_token": org.tokens[who]}, timeout=30
        )
        assert page.status_code == 200 and (REPO in page.text) is sees, who
    assert REPO not in [m.id for m in org.hub.api(False).list_models(author=ORG)]
