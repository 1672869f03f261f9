"""The web page's HTML through FastAPI's TestClient: what is listed to whom, escaping of
everything a repo holds (card, names, file text), the sign-in cookie, and that the page
routes leave the API, file and git routes alone. Chromium runs the pages in
test_hub_web_browser.py."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tether.hub.server import ServerConfig, create_app
from tether.hub.server.serve import first_token, open_sessions
from tether.hub.server.tokens import create_token, revoke_token
from tether.hub.server.web.session import COOKIE

XSS_CARD = """---
license: apache-2.0
tags: [tiny, "<b>bold</b>"]
---
# A card <script>alert(1)</script>

<img src=x onerror=alert(1)>

[click](javascript:alert(1)) [config](config.json) [folder](sub)
"""


@dataclass
class Site:
    client: TestClient
    data: Path
    tether: str  # tokens: tether's (write), alice's (write)
    alice: str

    def auth(self, token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"}

    def create(self, name: str, token: str, *, private: bool = False, kind: str = "model") -> None:
        made = self.client.post(
            "/api/repos/create",
            json={"name": name, "private": private, "type": kind},
            headers=self.auth(token),
        )
        assert made.status_code == 200, made.text

    def commit(self, repo: str, token: str, files: dict[str, bytes], *, kind: str = "model") -> str:
        """One commit of regular files, as huggingface_hub's create_commit sends it."""
        lines = [{"key": "header", "value": {"summary": f"add {', '.join(files)}"}}]
        for path, content in files.items():
            encoded = base64.b64encode(content).decode()
            lines.append({"key": "file", "value": {"path": path, "content": encoded}})
        answer = self.client.post(
            f"/api/{kind}s/{repo}/commit/main",
            content="\n".join(json.dumps(line) for line in lines),
            headers={**self.auth(token), "content-type": "application/x-ndjson"},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["commitOid"]

    def signed_in(self, token: str) -> TestClient:
        self.client.cookies.set(COOKIE, token)
        return self.client


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("web") / "data"
    config = ServerConfig(data_dir=data, public_url="http://testserver")
    tether = first_token(config, "tether")
    assert tether is not None
    with open_sessions(config)() as session:
        alice = create_token(session, "alice", "write", name="alice")
    with TestClient(create_app(config)) as client:
        s = Site(client, data, tether, alice)
        s.create("card", tether)
        s.commit(
            "tether/card",
            tether,
            {
                "README.md": XSS_CARD.encode(),
                "config.json": b'{"a": 1}',
                "sub/notes.txt": b"</pre><script>alert(2)</script> & more",
                "sub/deep/x.bin": b"\0\1\2",
            },
        )
        s.create("secret-model", tether, private=True)
        s.create("alice-private", alice, private=True)
        s.create("Other_1", tether)
        s.create("Otherx1", tether)
        s.create("data", tether, kind="dataset")
        yield s


@pytest.fixture(autouse=True)
def _no_cookie(site: Site) -> Iterator[None]:
    site.client.cookies.clear()
    yield
    site.client.cookies.clear()


def listed(html: str) -> list[str]:
    return re.findall(r'data-repo="([^"]+)"', html)


def test_the_front_page_lists_public_repos_newest_first(site: Site) -> None:
    page = site.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert listed(page.text) == ["tether/Otherx1", "tether/Other_1", "tether/card", "tether/data"]
    assert "Datasets" in page.text and "secret-model" not in page.text


def test_signed_in_the_front_page_adds_the_callers_own_private_repos(site: Site) -> None:
    page = site.signed_in(site.tether).get("/")
    assert "tether/secret-model" in listed(page.text)
    assert "alice-private" not in page.text  # another user's private repo stays hidden
    assert "signed in as <b>tether</b>" in page.text
    assert site.tether not in page.text


def test_an_authorization_header_works_as_the_cookie_does(site: Site) -> None:
    page = site.client.get("/", headers=site.auth(site.alice))
    assert "alice/alice-private" in listed(page.text) and "secret-model" not in page.text


def test_search_matches_any_part_of_the_repo_id_in_any_case(site: Site) -> None:
    assert listed(site.client.get("/", params={"search": "CAR"}).text) == ["tether/card"]
    # _ and % are literal characters, not SQL wildcards
    assert listed(site.client.get("/", params={"search": "r_1"}).text) == ["tether/Other_1"]
    assert listed(site.client.get("/", params={"search": "%"}).text) == []
    none = site.client.get("/", params={"search": '"><script>x</script>'})
    assert listed(none.text) == [] and "<script>" not in none.text
    assert "&#34;&gt;&lt;script&gt;" in none.text  # the query is shown back, escaped


def test_the_card_renders_markdown_with_every_tag_of_its_own_inert(site: Site) -> None:
    page = site.client.get("/tether/card")
    assert page.status_code == 200
    html = page.text
    assert "<script" not in html and "onerror=" not in html.replace("onerror=alert(1)&gt;", "")
    assert "<h1>A card &lt;script&gt;alert(1)&lt;/script&gt;</h1>" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript:' not in html and "[click](javascript:alert(1))" in html
    # relative links point into the repo: a file's view, a folder's tree
    assert 'href="/tether/card/blob/main/config.json"' in html
    assert 'href="/tether/card/tree/main/sub"' in html
    # the front matter is a table, its values escaped too
    assert "<th>license</th><td>apache-2.0</td>" in html
    assert "tiny, &lt;b&gt;bold&lt;/b&gt;" in html
    assert "---" not in html.split('class="markdown"')[1]


def test_every_page_allows_no_script(site: Site) -> None:
    for path in ("/", "/tether/card", "/tether/nope", "/_web/signin", "/tether/card/tree/main"):
        answer = site.client.get(path)
        policy = answer.headers["content-security-policy"]
        assert "script-src 'none'" in policy and "default-src 'none'" in policy, path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"


def test_the_repo_page_shows_branches_and_tags(site: Site) -> None:
    tagged = site.client.post(
        "/api/models/tether/card/tag/main", json={"tag": "v1.0"}, headers=site.auth(site.tether)
    )
    assert tagged.status_code == 200
    html = site.client.get("/tether/card").text
    assert 'href="/tether/card/tree/main">main</a>' in html
    assert 'href="/tether/card/tree/v1.0">v1.0</a>' in html
    assert "git clone http://testserver/tether/card" in html


def test_a_private_repo_is_a_404_page_to_others_like_a_missing_one(site: Site) -> None:
    missing = site.client.get("/tether/no-such-repo")
    hidden = site.client.get("/tether/secret-model")
    assert hidden.status_code == missing.status_code == 404  # the API says 401 here
    assert hidden.headers["content-type"].startswith("text/html")
    assert hidden.text.replace("secret-model", "no-such-repo") == missing.text
    assert "Repository not found." in hidden.text and "sign in</a> first" in hidden.text
    site.signed_in(site.alice)
    for sub in ("", "/tree/main", "/commits/main", "/blob/main/.gitattributes"):
        answer = site.client.get("/tether/secret-model" + sub)
        assert answer.status_code == 404 and "Repository not found." in answer.text, sub
    own = site.signed_in(site.tether).get("/tether/secret-model")
    assert own.status_code == 200 and "badge private" in own.text


def test_the_tree_lists_folders_then_files_with_sizes_at_any_revision(site: Site) -> None:
    root = site.client.get("/tether/card/tree/main").text
    assert 'href="/tether/card/tree/main/sub">sub/</a>' in root
    assert root.index("sub/</a>") < root.index("config.json</a>")
    assert "2 files" in root and "8 B" in root  # sub/ holds 2 files; config.json's size
    sub = site.client.get("/tether/card/tree/main/sub").text
    assert 'href="/tether/card/tree/main/sub/deep">deep/</a>' in sub
    assert 'href="/tether/card/blob/main/sub/notes.txt">notes.txt</a>' in sub
    first = site.client.get("/api/models/tether/card/commits/main").json()[-1]["id"]
    at_first = site.client.get(f"/tether/card/tree/{first}").text
    assert ".gitattributes" in at_first and "config.json" not in at_first
    assert site.client.get("/tether/card/tree/no-such-branch").status_code == 404
    assert site.client.get("/tether/card/tree/main/nowhere").status_code == 404
    to_file = site.client.get("/tether/card/tree/main/config.json", follow_redirects=False)
    assert to_file.headers["location"] == "/tether/card/blob/main/config.json"


def test_a_file_view_shows_small_text_escaped_and_binary_as_a_download(site: Site) -> None:
    notes = site.client.get("/tether/card/blob/main/sub/notes.txt").text
    assert "&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt; &amp; more" in notes
    assert "<script" not in notes
    assert 'href="/tether/card/resolve/main/sub/notes.txt"' in notes
    binary = site.client.get("/tether/card/blob/main/sub/deep/x.bin").text
    assert "A binary file" in binary and '<pre class="text">' not in binary
    assert site.client.get("/tether/card/blob/main/missing.txt").status_code == 404


def test_the_commits_page_lists_the_history_newest_first(site: Site) -> None:
    html = site.client.get("/tether/card/commits/main").text
    titles = re.findall(r'class="title" href="[^"]+">([^<]+)</a>', html)
    assert titles == ["add README.md, config.json, sub/notes.txt, sub/deep/x.bin", "initial commit"]


def test_datasets_have_their_pages_under_datasets(site: Site) -> None:
    assert site.client.get("/datasets/tether/data").status_code == 200
    assert site.client.get("/datasets/tether/data/tree/main").status_code == 200
    assert site.client.get("/tether/data").status_code == 404  # not a model


def test_the_pages_leave_the_api_file_and_git_routes_alone(site: Site) -> None:
    c = site.client
    assert c.get("/api/whoami-v2", headers=site.auth(site.tether)).json()["name"] == "tether"
    assert c.get("/api/nope").json() == {"error": "no route for GET /api/nope"}
    assert c.get("/api/models/tether/card").json()["id"] == "tether/card"
    raw = c.get("/tether/card/resolve/main/config.json")
    assert raw.content == b'{"a": 1}' and "content-security-policy" not in raw.headers
    for repo in ("/tether/card", "/tether/card.git"):
        refs = c.get(repo + "/info/refs", params={"service": "git-upload-pack"})
        assert refs.headers["content-type"] == "application/x-git-upload-pack-advertisement"
    assert c.get("/datasets/tether/data/resolve/main/.gitattributes").status_code == 200


def test_sign_in_keeps_the_token_in_an_httponly_strict_cookie_and_nowhere_else(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    form = {"token": site.tether, "next": "/tether/secret-model"}
    answer = site.client.post("/_web/signin", data=form, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/tether/secret-model"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={site.tether};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert site.tether not in answer.headers["location"] and site.tether not in answer.text
    followed = site.client.get("/tether/secret-model")
    assert followed.status_code == 200 and site.tether not in followed.text
    assert site.tether not in caplog.text


def test_a_wrong_token_is_refused_without_echoing_it(site: Site) -> None:
    answer = site.client.post("/_web/signin", data={"token": "hf_wrong_secret"})
    assert answer.status_code == 401 and "does not sign in" in answer.text
    assert "hf_wrong_secret" not in answer.text and "set-cookie" not in answer.headers


def test_a_sign_in_form_from_another_site_is_refused(site: Site) -> None:
    answer = site.client.post(
        "/_web/signin", data={"token": site.tether}, headers={"origin": "https://evil.example"}
    )
    assert answer.status_code == 403 and "set-cookie" not in answer.headers
    assert "another site" in answer.text


def test_sign_in_never_sends_the_browser_to_another_site(site: Site) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        answer = site.client.post(
            "/_web/signin", data={"token": site.tether, "next": target}, follow_redirects=False
        )
        assert answer.headers["location"] == "/", target


def test_sign_out_clears_the_cookie(site: Site) -> None:
    site.signed_in(site.tether)
    answer = site.client.post("/_web/signout", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["set-cookie"].startswith(f'{COOKIE}=""; ')
    assert "Max-Age=0" in answer.headers["set-cookie"]


def test_a_revoked_token_in_the_cookie_reads_as_signed_out(site: Site) -> None:
    config = ServerConfig(data_dir=site.data, public_url="http://testserver")
    with open_sessions(config)() as session:
        doomed = create_token(session, "tether", "read", name="doomed")
        page = site.signed_in(doomed).get("/")
        assert "tether/secret-model" in listed(page.text)
        revoke_token(session, name="doomed")
    page = site.client.get("/")
    assert page.status_code == 200 and "secret-model" not in page.text
    assert page.headers["set-cookie"].startswith(f'{COOKIE}=""; ')
