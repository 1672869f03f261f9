"""Benchmark: upload and download MB/s of one file through `tether hub serve`, against a plain
local file copy of the same file measured in the same run.

Starts the server on a free loopback port with a fresh data directory, then runs the
unmodified huggingface_hub client in subprocesses (HF_ENDPOINT is read at import):
upload with Xet (the client's default), upload with HF_HUB_DISABLE_XET=1 (LFS multipart),
and hf_hub_download into an empty cache. Each subprocess times only the call itself.

    python benchmarks/hub_throughput.py --mb 200
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def start(data: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", "hub", "serve", "--data", str(data), "--port", str(port)],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    token = ""
    for line in proc.stdout:
        found = re.match(r"export HF_TOKEN=(\S+)", line)
        token = found.group(1) if found else token
        if line.startswith("serving "):
            break
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/whoami-v2", timeout=1)
        except urllib.error.HTTPError:
            return proc, token
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def client(code: str, env: dict[str, str]) -> float:
    """Run ``code`` (which prints the seconds its call took) and return those seconds."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="File size in MB (default 200).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # Two different files: the server deduplicates by sha256, so the LFS upload must not
        # send what the Xet upload already stored.
        src, src2 = tmp / "weights.safetensors", tmp / "weights2.safetensors"
        for path in (src, src2):
            with path.open("wb") as out:
                for _ in range(args.mb):
                    out.write(os.urandom(1024 * 1024))
        t0 = time.perf_counter()
        shutil.copyfile(src, tmp / "copy.safetensors")
        with (tmp / "copy.safetensors").open("rb+") as handle:
            os.fsync(handle.fileno())
        copy_s = time.perf_counter() - t0

        port = free_port()
        proc, token = start(tmp / "data", port)
        env = clean_env()
        env.update(
            {
                "HF_ENDPOINT": f"http://127.0.0.1:{port}",
                "HF_TOKEN": token,
                "HF_HOME": str(tmp / "hf-home"),
                "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            }
        )
        try:
            results = {"local copy": copy_s}
            upload = """
                import sys, time
                from huggingface_hub import HfApi
                api = HfApi()
                api.create_repo("{repo}")
                t0 = time.perf_counter()
                api.upload_file(path_or_fileobj="{src}", path_in_repo="w.safetensors",
                                repo_id="tether/{repo}")
                print(time.perf_counter() - t0)
            """
            results["upload (Xet, default)"] = client(upload.format(repo="xet", src=src), env)
            results["upload (LFS, HF_HUB_DISABLE_XET=1)"] = client(
                upload.format(repo="lfs", src=src2), dict(env, HF_HUB_DISABLE_XET="1")
            )
            results["download (hf_hub_download)"] = client(
                f"""
                import time
                from huggingface_hub import hf_hub_download
                t0 = time.perf_counter()
                hf_hub_download("tether/xet", "w.safetensors", cache_dir="{tmp / "dl"}")
                print(time.perf_counter() - t0)
            """,
                env,
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"{args.mb} MB file, one run (loopback, {os.cpu_count()} CPUs):")
    for name, seconds in results.items():
        print(f"  {name:36s} {seconds:7.2f} s  {args.mb / seconds:8.1f} MB/s")
    print(json.dumps({k: round(args.mb / v, 1) for k, v in results.items()}))


if __name__ == "__main__":
    main()
