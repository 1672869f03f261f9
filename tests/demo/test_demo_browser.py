"""`tether demo` in a real headless Chromium: start the command, type a text, submit,
read the answer from the page, take a screenshot. And the exported Space, run as is."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from browser import browser_page
from conftest import optional_import
from tether import verify
from tether.cli.main import cli

optional_import("gradio", "demo")

SRC = str(Path(__file__).resolve().parents[2] / "src")
CORPUS = ["the quick brown fox jumps", "paris is the capital of france", "numbers like 42 and 3.14"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # the tether of this checkout, whatever the working directory
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": SRC, **(env or {})},
    )


def _wait_for_url(process: subprocess.Popen, pattern: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found.group(1)
    raise AssertionError("the demo did not start:\n" + "".join(seen))


def _ask(url: str, text: str, screenshot: Path) -> str:
    with browser_page() as page:
        page.goto(url, wait_until="domcontentloaded")
        box = page.locator("#tether-input textarea")
        box.wait_for(timeout=60_000)
        box.fill(text)
        page.locator("#tether-submit").click()
        output = page.locator("#tether-output")
        page.wait_for_function(
            "() => document.querySelector('#tether-output').innerText.includes('nearest')"
            " || document.querySelector('#tether-output').innerText.includes('**')"
            " || document.querySelector('#tether-output').innerText.length > 10",
            timeout=60_000,
        )
        answer = output.inner_text()
        page.screenshot(path=str(screenshot), full_page=True)
        return answer


@pytest.mark.slow
def test_the_demo_answers_a_typed_text_in_a_real_browser(tiny, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    port = _free_port()
    process = _start(
        [
            sys.executable,
            "-m",
            "tether",
            "demo",
            str(tiny["bert"]),
            "-i",
            str(corpus),
            "--port",
            str(port),
            "--top-k",
            "2",
        ],
        tmp_path,
    )
    try:
        url = _wait_for_url(process, r"running at (http://127\.0\.0\.1:\d+/)")
        assert url == f"http://127.0.0.1:{port}/"
        answer = _ask(url, CORPUS[1], tmp_path / "demo.png")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "nearest 2 of 3" in answer
    # the rendered list: its first item is the typed text itself
    assert answer.split("\n(")[1].startswith(f"1.000) {CORPUS[1]}")
    assert (tmp_path / "demo.png").stat().st_size > 5000


@pytest.mark.slow
def test_the_exported_space_runs_the_same_app(tiny, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    space = tmp_path / "space"
    result = CliRunner().invoke(
        cli, ["demo", str(tiny["bert"]), "-i", str(corpus), "--export-space", str(space)]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in space.iterdir()} >= {
        "app.py",
        "requirements.txt",
        "README.md",
        "model",
        "corpus.txt",
    }
    readme = (space / "README.md").read_text()
    assert readme.startswith("---\n") and "sdk: gradio" in readme and "app_file: app.py" in readme
    assert verify(space / "model").ok
    again = CliRunner().invoke(cli, ["demo", str(tiny["bert"]), "--export-space", str(space)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    port = _free_port()
    process = _start(
        [sys.executable, "app.py"],
        space,
        env={"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)},
    )
    try:
        _wait_for_url(process, r"(http://127\.0\.0\.1:\d+)")
        answer = _ask(f"http://127.0.0.1:{port}/", CORPUS[0], tmp_path / "space.png")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert answer.split("\n(")[1].startswith(f"1.000) {CORPUS[0]}")
