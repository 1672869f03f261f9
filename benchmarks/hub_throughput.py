"""Benchmark: upload and download MB/s of one file through `tether hub serve`, against a plain
local file copy (with fsync) of a file of the same size measured in the same run.

Starts the server on a free loopback port with a fresh data directory, then runs the
unmodified huggingface_hub client in subprocesses (HF_ENDPOINT is read at import):
upload with Xet (the client's default), upload with HF_HUB_DISABLE_XET=1 (LFS multipart),
and hf_hub_download into an empty cache. Each subprocess times only the call itself.
The four measurements are interleaved in rounds and the best of each is reported, with
its ratio to the local copy, and the machine's load average before and after.

    python benchmarks/hub_throughput.py --mb 200 --rounds 3
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


def random_file(path: Path, mb: int) -> Path:
    """``mb`` MiB of fresh random bytes: every upload is new to the server and to the
    client's own Xet dedup cache, so no round is helped by an earlier one."""
    with path.open("wb") as out:
        for _ in range(mb):
            out.write(os.urandom(1024 * 1024))
    return path


def local_copy(src: Path, dst: Path) -> float:
    """The reference: copy the file on the same disk and fsync it."""
    t0 = time.perf_counter()
    shutil.copyfile(src, dst)
    with dst.open("rb+") as handle:
        os.fsync(handle.fileno())
    return time.perf_counter() - t0


UPLOAD = """
    import time
    from huggingface_hub import HfApi
    api = HfApi()
    api.create_repo("{repo}")
    t0 = time.perf_counter()
    api.upload_file(path_or_fileobj="{src}", path_in_repo="w.safetensors", repo_id="tether/{repo}")
    print(time.perf_counter() - t0)
"""
DOWNLOAD = """
    import time
    from huggingface_hub import hf_hub_download
    t0 = time.perf_counter()
    hf_hub_download("tether/{repo}", "w.safetensors", cache_dir="{cache}")
    print(time.perf_counter() - t0)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="File size in MiB (default 200).")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (best of N).")
    args = parser.parse_args()
    load_before = os.getloadavg()
    timings: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
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
            for index in range(args.rounds):
                # One round measures each in turn, so machine load hits all alike.
                src = random_file(tmp / "src.safetensors", args.mb)
                timings.setdefault("local copy (reference)", []).append(
                    local_copy(src, tmp / "copy.safetensors")
                )
                (tmp / "copy.safetensors").unlink()
                timings.setdefault("upload (Xet, default)", []).append(
                    client(UPLOAD.format(repo=f"xet{index}", src=src), env)
                )
                src = random_file(tmp / "src.safetensors", args.mb)
                timings.setdefault("upload (LFS, HF_HUB_DISABLE_XET=1)", []).append(
                    client(
                        UPLOAD.format(repo=f"lfs{index}", src=src),
                        dict(env, HF_HUB_DISABLE_XET="1"),
                    )
                )
                src.unlink()
                cache = tmp / f"dl{index}"
                timings.setdefault("download (hf_hub_download)", []).append(
                    client(DOWNLOAD.format(repo=f"xet{index}", cache=cache), env)
                )
                shutil.rmtree(cache)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    reference = min(timings["local copy (reference)"])
    print(
        f"{args.mb} MiB file, best of {args.rounds} interleaved rounds (server and client on "
        f"loopback, {os.cpu_count()} CPUs; load average before {load_before[0]:.2f}, "
        f"after {os.getloadavg()[0]:.2f}):"
    )
    for name, seconds in timings.items():
        best = min(seconds)
        print(
            f"  {name:36s} {best:7.2f} s  {args.mb / best:8.1f} MiB/s  "
            f"{reference / best:6.3f}x local copy   (rounds: "
            + ", ".join(f"{s:.2f}" for s in seconds)
            + " s)"
        )
    print(json.dumps({k: round(args.mb / min(v), 1) for k, v in timings.items()}))


if __name__ == "__main__":
    main()
