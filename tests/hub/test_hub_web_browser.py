"""The web page in a real headless Chromium (tests/browser.py) against a real hub on a
loopback socket, its repos made with the unmodified huggingface_hub client: the repos list
and its search box, a card whose script and ``onerror`` never run, the files at a tag,
sign-in by token showing a private repo. Skipped locally without Chromium, a failure under
CI=true, as the other browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from browser import browser_page
from hub_server import ThreadHub, start_thread_hub

CARD = """---
license: mit
---
# Tiny card

<script>alert(1)</script>

<img src=x onerror=alert(1)>

[a javascript link](javascript:alert(1)) and [the config](config.json).
"""


@pytest.fixture(scope="module")
def web_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadHub]:
    """A hub of its own (the shared one holds other tests' repos): a model with a card, an
    LFS weight and a folder, tagged v1 before a later commit; a dataset; a private model."""
    from huggingface_hub import constants

    hub = start_thread_hub(tmp_path_factory.mktemp("webhub"))
    with pytest.MonkeyPatch.context() as patch:  # conftest's _online, for a module fixture
        patch.setattr(constants, "HF_HUB_OFFLINE", False)
        patch.setenv("HF_XET_CACHE", str(tmp_path_factory.getbasetemp() / "xet-cache"))
        seed(hub)
    yield hub
    hub.stop()


def seed(hub: ThreadHub) -> None:
    from huggingface_hub import CommitOperationAdd

    api = hub.api()
    api.create_repo("tether/tiny-card")
    api.create_commit(
        "tether/tiny-card",
        [
            CommitOperationAdd("README.md", CARD.encode()),
            CommitOperationAdd("config.json", b'{"hidden_size": 32}\n'),
            CommitOperationAdd("model.safetensors", bytes(range(256)) * 64),
            CommitOperationAdd("sub/notes.txt", b"a note in a folder\n"),
        ],
        commit_message="add the model",
    )
    api.create_tag("tether/tiny-card", tag="v1")
    api.upload_file(
        path_or_fileobj=b"after v1\n", path_in_repo="later.txt", repo_id="tether/tiny-card"
    )
    api.create_repo("tether/reviews", repo_type="dataset")
    api.create_repo("tether/hidden-model", private=True)


def repos_on(page: Any) -> list[str]:
    return page.locator(".repo-row").evaluate_all("rows => rows.map(r => r.dataset.repo)")


def test_the_repos_list_and_its_search_box(web_hub: ThreadHub) -> None:
    with browser_page() as page:
        page.goto(web_hub.endpoint + "/")
        assert repos_on(page) == ["tether/tiny-card", "tether/reviews"]
        assert page.locator("h2", has_text="Datasets").count() == 1
        page.fill("input[name=search]", "TINY")
        page.press("input[name=search]", "Enter")
        page.wait_for_url("**/?search=TINY")
        assert repos_on(page) == ["tether/tiny-card"]
        page.click("text=tether/tiny-card")
        page.wait_for_url(web_hub.endpoint + "/tether/tiny-card")
        assert page.locator("h1").first.inner_text().endswith("tether/tiny-card")


def test_a_cards_script_and_onerror_never_run(web_hub: ThreadHub) -> None:
    with browser_page() as page:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(web_hub.endpoint + "/tether/tiny-card", wait_until="load")
        page.wait_for_timeout(500)  # time for a stray onerror to fire
        assert dialogs == []
        assert page.evaluate("document.scripts.length") == 0
        card = page.locator(".markdown")
        assert card.locator("script, img, [onerror]").count() == 0
        text = card.inner_text()
        assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(1)>" in text
        assert card.locator("a[href^='javascript:']").count() == 0
        assert page.locator("table.metadata").inner_text().split() == ["license", "mit"]
        page.click(".markdown >> text=the config")
        page.wait_for_url("**/tether/tiny-card/blob/main/config.json")
        assert '"hidden_size": 32' in page.locator("pre.text").inner_text()
        page.evaluate("alert('control')")  # the listener does see an alert that runs
        assert dialogs == ["control"]


def test_the_files_at_a_tag_with_sizes_lfs_and_folders(web_hub: ThreadHub) -> None:
    with browser_page() as page:
        page.goto(web_hub.endpoint + "/tether/tiny-card")
        page.click(".refs >> text=v1")
        page.wait_for_url("**/tether/tiny-card/tree/v1")
        names = page.locator("table.files tbody td:first-child").all_inner_texts()
        assert names == ["sub/", ".gitattributes", "README.md", "config.json", "model.safetensors"]
        weight = page.locator("tr.file", has_text="model.safetensors")
        assert weight.locator(".badge.lfs").count() == 1 and "16.4 kB" in weight.inner_text()
        assert page.locator("tr.file", has_text="config.json").locator(".badge.lfs").count() == 0
        page.click("text=sub/")
        page.wait_for_url("**/tether/tiny-card/tree/v1/sub")
        page.click("text=notes.txt")
        page.wait_for_url("**/tether/tiny-card/blob/v1/sub/notes.txt")
        assert page.locator("pre.text").inner_text() == "a note in a folder\n"
        page.goto(web_hub.endpoint + "/tether/tiny-card/tree/main")
        assert page.locator("tr.file", has_text="later.txt").count() == 1


def test_signing_in_shows_a_private_repo_and_signing_out_hides_it(web_hub: ThreadHub) -> None:
    with browser_page() as page:
        page.goto(web_hub.endpoint + "/")
        assert "tether/hidden-model" not in repos_on(page)
        page.click("text=Sign in")
        page.fill("#token", web_hub.token)
        page.click("form.signin button")
        page.wait_for_selector(".user")
        assert page.locator(".user").inner_text() == "signed in as tether"
        assert "tether/hidden-model" in repos_on(page)
        assert page.evaluate("document.cookie") == ""  # HttpOnly: out of any script's reach
        assert web_hub.token not in page.content() and web_hub.token not in page.url
        page.click("text=tether/hidden-model")
        assert page.locator(".badge.private").count() == 1
        page.click("text=Sign out")
        page.wait_for_selector("text=Sign in")
        assert "tether/hidden-model" not in repos_on(page)
