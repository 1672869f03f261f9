"""Finding repos with the unmodified client: ``list_models`` / ``list_datasets`` /
``list_spaces``, its Link-header paging, and ``hf models ls`` / ``hf repos ls``."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import BadRequestError
from huggingface_hub.utils._pagination import paginate

from hub_server import ThreadHub


@pytest.fixture(scope="module")
def finder(hub: ThreadHub) -> tuple[HfApi, HfApi]:
    """User ``finder`` with five models (one private), a dataset and a space, and user
    ``other`` with a public and a private model; both users' write APIs. (Module scope
    runs before the autouse ``_online`` fixture, so it lifts the offline switch itself.)"""
    from huggingface_hub import constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "HF_HUB_OFFLINE", False)
        return _make_repos(hub)


def _make_repos(hub: ThreadHub) -> tuple[HfApi, HfApi]:
    api = HfApi(endpoint=hub.endpoint, token=hub.create_token("finder", name="finder"))
    other = HfApi(endpoint=hub.endpoint, token=hub.create_token("other", name="other"))
    for name in ("alpha-bert", "beta-bert", "gamma-gpt", "delta-bert"):
        api.create_repo(f"finder/{name}", exist_ok=True)
    api.create_repo("finder/secret-bert", private=True, exist_ok=True)
    api.create_repo("finder/texts", repo_type="dataset", exist_ok=True)
    api.create_repo("finder/demo", repo_type="space", space_sdk="gradio", exist_ok=True)
    other.create_repo("other/public-bert", exist_ok=True)
    other.create_repo("other/hidden-bert", private=True, exist_ok=True)
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="finder/beta-bert")
    return api, other


def test_list_models_by_author_and_search(finder: tuple[HfApi, HfApi], hub: ThreadHub) -> None:
    """author and search filter; private repos only for their owner's token."""
    api, other = finder
    anon = HfApi(endpoint=hub.endpoint, token=False)
    mine = sorted(m.id for m in api.list_models(author="finder"))
    seen_by_other = sorted(m.id for m in other.list_models(author="finder"))
    berts = sorted(m.id for m in api.list_models(search="BERT", author="finder"))
    anon_berts = sorted(m.id for m in anon.list_models(search="bert"))

    assert mine == [
        "finder/alpha-bert",
        "finder/beta-bert",
        "finder/delta-bert",
        "finder/gamma-gpt",
        "finder/secret-bert",
    ]
    assert seen_by_other == [m for m in mine if m != "finder/secret-bert"]
    assert berts == [
        "finder/alpha-bert",
        "finder/beta-bert",
        "finder/delta-bert",
        "finder/secret-bert",
    ]
    assert "finder/secret-bert" not in anon_berts and "other/hidden-bert" not in anon_berts
    assert {"finder/alpha-bert", "other/public-bert"} <= set(anon_berts)


def test_list_models_sort_limit_and_fields(finder: tuple[HfApi, HfApi]) -> None:
    """sort=last_modified is newest first; limit; the default fields; full and expand."""
    api, _ = finder
    newest = next(iter(api.list_models(author="finder", sort="last_modified", limit=1)))
    by_created = [m.id for m in api.list_models(author="finder", sort="created_at")]
    three = list(api.list_models(author="finder", limit=3))
    full = {m.id: m for m in api.list_models(author="finder", full=True)}
    expanded = next(iter(api.list_models(search="beta-bert", expand=["sha", "siblings"])))

    assert newest.id == "finder/beta-bert"  # the one committed to last
    assert newest.last_modified is not None and newest.sha == api.model_info(newest.id).sha
    assert by_created[-1] == "finder/alpha-bert"  # oldest last
    assert len(three) == 3 and [m.id for m in three] == sorted(m.id for m in three)
    assert three[0].private is False and three[0].author == "finder"
    assert [s.rfilename for s in full["finder/beta-bert"].siblings] == [
        ".gitattributes",
        "config.json",
    ]
    assert three[0].siblings is None
    assert expanded.sha is not None and expanded.author is None  # only what was asked
    assert [s.rfilename for s in expanded.siblings] == [".gitattributes", "config.json"]


def test_list_datasets_and_spaces(finder: tuple[HfApi, HfApi]) -> None:
    api, _ = finder
    datasets = [d.id for d in api.list_datasets(author="finder", search="tex")]
    spaces = [s.id for s in api.list_spaces(author="finder")]
    assert datasets == ["finder/texts"]
    assert spaces == ["finder/demo"]


def test_paging_follows_the_link_header(finder: tuple[HfApi, HfApi], hub: ThreadHub) -> None:
    """limit is the page size; the client's own paginator follows ``Link: rel="next"``
    cursors until the last page, each repo once, in order."""
    api, _ = finder
    headers = api._build_hf_headers()
    ids = [
        item["id"]
        for item in paginate(
            f"{hub.endpoint}/api/models",
            params={"author": "finder", "limit": 2, "sort": "lastModified"},
            headers=headers,
        )
    ]
    expected = [m.id for m in api.list_models(author="finder", sort="last_modified")]
    assert ids == expected and len(ids) == 5


def test_bad_listing_parameters_are_refused(finder: tuple[HfApi, HfApi]) -> None:
    api, _ = finder
    with pytest.raises(BadRequestError, match="unknown expand properties: nonsense"):
        list(api.list_models(expand=["nonsense"]))  # type: ignore[list-item]
    with pytest.raises(BadRequestError, match="cursor"):
        list(paginate(f"{api.endpoint}/api/models", params={"cursor": "!!"}, headers={}))


def test_hf_models_ls_and_repos_ls(
    finder: tuple[HfApi, HfApi], hub: ThreadHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `hf` command line: ``hf models ls --author`` and ``hf repos ls`` (the caller's
    repos of every type, with storage)."""
    from click.testing import CliRunner
    from huggingface_hub import constants
    from huggingface_hub.cli.hf import app

    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", api_token(finder[0]))
    runner = CliRunner()
    models = runner.invoke(
        app, ["models", "ls", "--author", "finder", "--search", "bert", "--format", "json"]
    )
    repos = runner.invoke(app, ["repos", "ls", "--format", "json"])

    assert models.exit_code == 0, models.output
    assert sorted(m["id"] for m in json.loads(models.output)) == [
        "finder/alpha-bert",
        "finder/beta-bert",
        "finder/delta-bert",
        "finder/secret-bert",
    ]
    assert repos.exit_code == 0, repos.output
    listed = {r["id"]: r for r in json.loads(repos.output)}
    assert listed["finder/texts"]["type"] == "dataset"
    assert listed["finder/secret-bert"]["visibility"] == "private"


def api_token(api: HfApi) -> str:
    assert isinstance(api.token, str)
    return api.token
