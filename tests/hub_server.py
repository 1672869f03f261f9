"""Helpers for tests/hub: the hub server on a loopback port, and the client pointed at it.

Two kinds of server, one interface (``endpoint``, ``token``, ``data``):

- ``ThreadHub``: the app under uvicorn on a thread of the test process. Most tests use it
  (the ``hub`` fixture) and call the client in-process with ``endpoint=`` and ``token=``
  (``hub.api()``, ``hub.download()``, ``tether.push(..., endpoint=hub.endpoint)``).
  A real socket, not an ASGI transport: hf_xet uploads over its own HTTP stack.
- ``HubServer``: a real `tether hub serve` process, for what needs one (killing it
  mid-upload, its command-line options).

Code that reads HF_ENDPOINT itself (transformers' ``from_pretrained``, the `tether`
command line, ``tether.load_bundle("org/name")``) runs in a subprocess with HF_ENDPOINT,
HF_TOKEN and HF_HOME set (``hub.client()``, ``hub.tether()``): huggingface_hub reads them
once, at import.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


class Hub:
    """What tests need of a running hub, whichever kind runs it."""

    data: Path
    port: int
    token: str

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, token: str | bool | None = "default") -> Any:
        """An ``HfApi`` for this hub, acting with the first token (or ``token``; False
        for none)."""
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self._token(token))

    def download(
        self, repo_id: str, filename: str, *, token: str | bool | None = "default", **kw: Any
    ) -> Path:
        """``hf_hub_download`` from this hub into a cache of the test's (or ``cache_dir``)."""
        from huggingface_hub import hf_hub_download

        kw.setdefault("cache_dir", self.data.parent / "hf-cache")
        return Path(
            hf_hub_download(
                repo_id, filename, endpoint=self.endpoint, token=self._token(token), **kw
            )
        )

    def snapshot(self, repo_id: str, **kw: Any) -> Path:
        from huggingface_hub import snapshot_download

        kw.setdefault("cache_dir", self.data.parent / "hf-cache")
        return Path(snapshot_download(repo_id, endpoint=self.endpoint, token=self.token, **kw))

    def create_token(self, user: str = "tether", scope: str = "write", name: str = "t") -> str:
        """A new token, made as `tether hub token create` makes one (same database)."""
        from tether.hub.server.config import ServerConfig
        from tether.hub.server.serve import open_sessions
        from tether.hub.server.tokens import create_token

        config = ServerConfig(data_dir=self.data, public_url=self.endpoint)
        with open_sessions(config)() as session:
            return create_token(session, user, scope, name=name)

    def revoke_token(self, name: str) -> int:
        from tether.hub.server.config import ServerConfig
        from tether.hub.server.serve import open_sessions
        from tether.hub.server.tokens import revoke_token

        config = ServerConfig(data_dir=self.data, public_url=self.endpoint)
        with open_sessions(config)() as session:
            return revoke_token(session, name=name)

    def _token(self, token: str | bool | None) -> str | bool | None:
        return self.token if token == "default" else token

    def run(self, *args: str, stdin: str | None = None) -> Any:
        """The `tether` command line in this process (click's CliRunner); `tether hub`
        commands get ``--data`` of this hub. Needs the ``hf_env`` fixture for commands
        that talk to the hub (they read HF_ENDPOINT)."""
        from click.testing import CliRunner

        from tether.cli.main import cli

        argv = [*args, "--data", str(self.data)] if args[0] == "hub" else list(args)
        return CliRunner().invoke(cli, argv, input=stdin, catch_exceptions=False)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """`tether hub ARGS --data DATA` in a subprocess (the token commands)."""
        out = subprocess.run(
            [sys.executable, "-m", "tether", "hub", *args, "--data", str(self.data)],
            env=base_env(),
            input=stdin,
            text=True,
            capture_output=True,
            check=True,
        )
        return out.stdout

    def client(
        self,
        code: str,
        *,
        token: str | None = "default",
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``code`` with the unmodified huggingface_hub client pointed at this server."""
        return self._run(
            ["-c", textwrap.dedent(code)], token=token, env=env, check=check, timeout=timeout
        )

    def tether(
        self,
        *args: str,
        token: str | None = "default",
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run the `tether` command line as a user pointed at this server would."""
        return self._run(
            ["-m", "tether", *args], token=token, env=env, check=check, timeout=timeout
        )

    def _run(
        self,
        argv: list[str],
        *,
        token: str | None,
        env: dict[str, str] | None,
        check: bool,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        full_env = base_env()
        full_env.update(
            {
                "HF_ENDPOINT": self.endpoint,
                "HF_HOME": str(self.data.parent / "hf-home"),
                "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1",
            }
        )
        if token:
            full_env["HF_TOKEN"] = self.token if token == "default" else token
        full_env.update(env or {})
        result = subprocess.run(
            [sys.executable, *argv],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.data.parent,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{argv[:3]} failed:\n{result.stdout}\n{result.stderr[-4000:]}")
        return result


@dataclass
class HubServer(Hub):
    """A `tether hub serve` process."""

    data: Path
    port: int
    token: str = field(repr=False)  # a pytest failure report prints the repr
    process: subprocess.Popen[str] | None = None
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] | None = None

    def start(self) -> HubServer:
        cmd = [
            sys.executable,
            "-m",
            "tether",
            "hub",
            "serve",
            "--data",
            str(self.data),
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            cmd,
            env={**base_env(), **(self.extra_env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError("hub server exited during start-up")
            found = re.match(r"export HF_TOKEN=(\S+)", line)
            if found:
                self.token = found.group(1)
            if line.startswith("serving "):
                break
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.endpoint + "/api/whoami-v2", timeout=1)
            except urllib.error.HTTPError:
                return self  # 401: the server answers
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("hub server did not answer in time")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


def start_server(
    root: Path, extra_args: tuple[str, ...] = (), extra_env: dict[str, str] | None = None
) -> HubServer:
    root.mkdir(parents=True, exist_ok=True)
    server = HubServer(
        data=root / "data", port=free_port(), token="", extra_args=extra_args, extra_env=extra_env
    )
    return server.start()


@dataclass
class ThreadHub(Hub):
    """The hub app under uvicorn on a thread of this process (no `tether hub serve`)."""

    data: Path
    port: int
    token: str = field(repr=False)
    server: Any = None
    thread: threading.Thread | None = None

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)


def start_thread_hub(root: Path, user: str = "tether") -> ThreadHub:
    """Start the app as `tether hub serve` would (first token, then uvicorn), on a socket
    bound here so the port is known before the server runs."""
    import uvicorn

    from tether.hub.server import ServerConfig, create_app
    from tether.hub.server.serve import first_token

    root.mkdir(parents=True, exist_ok=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = ServerConfig(data_dir=root / "data", public_url=f"http://127.0.0.1:{port}")
    token = first_token(config, user)
    assert token is not None
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("the in-process hub server did not start")
        time.sleep(0.02)
    return ThreadHub(data=config.data_dir, port=port, token=token, server=server, thread=thread)
