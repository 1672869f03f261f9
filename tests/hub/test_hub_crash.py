"""Killing the server mid-upload leaves the repo at its last good commit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hub_server import HubServer, base_env, start_server

pytestmark = pytest.mark.slow


def test_kill_mid_upload_then_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        before = server.client("""
            from huggingface_hub import HfApi
            api = HfApi()
            api.create_repo("crash")
            print(api.upload_file(path_or_fileobj=b"good", path_in_repo="good.txt",
                                  repo_id="tether/crash").oid)
        """).stdout.split()[-1]
        env = base_env()
        env.update(
            {
                "HF_ENDPOINT": server.endpoint,
                "HF_TOKEN": server.token,
                "HF_HOME": str(tmp_path / "hf-home"),
                "HF_HUB_DISABLE_XET": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            }
        )
        code = textwrap.dedent("""
            import os
            from huggingface_hub import HfApi
            open("huge.safetensors", "wb").write(os.urandom(80 * 1024 * 1024))
            HfApi().upload_file(path_or_fileobj="huge.safetensors", path_in_repo="huge.safetensors",
                                repo_id="tether/crash")
        """)
        upload = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        uploads = server.data / "uploads"
        deadline = time.time() + 120
        while time.time() < deadline and not any(uploads.rglob("*")):
            time.sleep(0.05)
        assert any(uploads.rglob("*")), "the upload never reached the server"
        server.kill(signal.SIGKILL)
        upload.wait(timeout=300)
        assert upload.returncode != 0

        restarted = HubServer(data=server.data, port=server.port, token=server.token).start()
        server = restarted
        after = server.client("""
            from huggingface_hub import HfApi
            api = HfApi()
            print(api.model_info("tether/crash").sha, *api.list_repo_files("tether/crash"))
            head = api.model_info("tether/crash").sha
            api.upload_file(path_or_fileobj=b"again", path_in_repo="again.txt",
                            repo_id="tether/crash", parent_commit=head)
            print(*api.list_repo_files("tether/crash"))
        """).stdout.splitlines()
        assert after[0].split() == [before, ".gitattributes", "good.txt"]
        assert after[1].split() == [".gitattributes", "again.txt", "good.txt"]
    finally:
        server.kill()
