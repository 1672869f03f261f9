"""Helpers for tests/hub: a real `tether hub serve` on a free loopback port; client code runs.

The huggingface_hub client reads HF_ENDPOINT when it is imported, so every client call runs
in a fresh subprocess with HF_ENDPOINT, HF_TOKEN and HF_HOME set (and the suite-wide
HF_HUB_OFFLINE removed).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class HubServer:
    data: Path
    port: int
    token: str = field(repr=False)  # a pytest failure report prints the repr
    process: subprocess.Popen[str] | None = None
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def cli(self, *args: str, stdin: str | None = None) -> str:
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


def start_server(
    root: Path, extra_args: tuple[str, ...] = (), extra_env: dict[str, str] | None = None
) -> HubServer:
    root.mkdir(parents=True, exist_ok=True)
    server = HubServer(
        data=root / "data", port=free_port(), token="", extra_args=extra_args, extra_env=extra_env
    )
    return server.start()
