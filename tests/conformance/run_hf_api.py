"""huggingface_hub's own ``tests/test_hf_api.py``, at the installed version, run against a
fresh `tether hub serve`: the conformance figure for docs/hub.md.

    python tests/conformance/run_hf_api.py [--sdist FILE] [--workdir DIR] [-k EXPR]

The wheel carries no tests, so the sdist is used (``--sdist``, or fetched once with
``pip download --no-deps --no-binary :all: huggingface_hub==<version>`` into
``~/.cache/tether/conformance``). Its ``tests/`` is unpacked into the work directory with
``hf_conftest.py`` as its conftest (the sdist ships none), a server is started on a free
loopback port with a token for each of the suite's two users, and pytest runs the file
with ``out_of_scope.txt``'s tests deselected. The report: passed / failed / skipped, and
the failures grouped by their first error line. Exit status 0 when it ran, whatever the
figure (it is a measurement, not a gate).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
USER, OTHER_USER = "dummy-hub-user", "DVUser"
CACHE = Path.home() / ".cache" / "tether" / "conformance"


def out_of_scope() -> dict[str, str]:
    """node id prefix -> why it is out of scope, from out_of_scope.txt."""
    entries = {}
    for line in (HERE / "out_of_scope.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            prefix, _, why = line.partition("  # ")
            entries[prefix.strip()] = why.strip()
    return entries


def get_sdist(version: str, given: str | None) -> Path:
    if given:
        return Path(given)
    path = CACHE / f"huggingface_hub-{version}.tar.gz"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"huggingface_hub=={version}",
                "-d",
                str(CACHE),
            ],
            check=True,
        )
    return path


def unpack_tests(sdist: Path, work: Path) -> Path:
    """``work/hfh/tests`` with the suite's files, an ``__init__.py`` and our conftest."""
    root = work / "hfh"
    shutil.rmtree(root, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if "/tests/" in m.name]
        tar.extractall(work / "unpacked", members=members, filter="data")
    (tests,) = (work / "unpacked").glob("*/tests")
    shutil.copytree(tests, root / "tests")
    (root / "tests" / "__init__.py").write_text("")
    shutil.copy(HERE / "hf_conftest.py", root / "tests" / "conftest.py")
    return root


def env_with_src() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def start_server(work: Path) -> tuple[subprocess.Popen[str], str, str, str]:
    """A `tether hub serve` on a free port: (process, endpoint, token, other user's token)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    tether = [sys.executable, "-m", "tether", "hub"]
    proc = subprocess.Popen(
        [*tether, "serve", "--data", str(data), "--port", str(port), "--user", USER],
        env=env_with_src(),
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
    # Keep draining the server's output (into server.log) so it never blocks on a full pipe.
    threading.Thread(target=_drain, args=(proc, work / "server.log"), daemon=True).start()
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(endpoint + "/api/whoami-v2", timeout=1)
        except urllib.error.HTTPError:
            break  # 401: it answers
        except OSError:
            time.sleep(0.1)
    other = subprocess.run(
        [
            *tether,
            "token",
            "create",
            "--data",
            str(data),
            "--user",
            OTHER_USER,
            "--scope",
            "write",
            "--name",
            "other",
        ],
        env=env_with_src(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return proc, endpoint, token, other


def _drain(proc: subprocess.Popen[str], path: Path) -> None:
    assert proc.stdout is not None
    with path.open("w") as out:
        for line in proc.stdout:
            out.write(line)


def cause(message: str) -> str:
    """A failure's first line with ids, hashes, ports and numbers blanked, to group by."""
    line = (message or "").strip().splitlines()[0] if (message or "").strip() else "(no message)"
    line = re.sub(r"https?://127\.0\.0\.1:\d+", "<hub>", line)
    line = re.sub(r"\b[0-9a-f]{7,64}\b", "<hash>", line)
    line = re.sub(r"repo-[0-9a-z-]+", "<repo>", line)
    line = re.sub(r"\d+", "N", line)
    return line[:160]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sdist", help="huggingface_hub sdist (default: fetch the installed version's)"
    )
    parser.add_argument(
        "--workdir", help="where to unpack and keep the server's data (default: a temp dir)"
    )
    parser.add_argument(
        "--all", action="store_true", help="run the out-of-scope tests too (to see which pass)"
    )
    parser.add_argument("--json", help="also write the figures and failures to this file")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression, to run a part")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds for the pytest run")
    args = parser.parse_args()

    version = importlib.metadata.version("huggingface_hub")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tether-conformance-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    root = unpack_tests(get_sdist(version, args.sdist), work)
    skipped_scope = {} if args.all else out_of_scope()
    proc, endpoint, token, other = start_server(work)
    junit = work / "junit.xml"
    env = env_with_src()
    env.update(
        {
            "HF_ENDPOINT": endpoint,
            "HF_HOME": str(work / "hf-home"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "TETHER_CONFORMANCE_ENDPOINT": endpoint,
            "TETHER_CONFORMANCE_USER": USER,
            "TETHER_CONFORMANCE_TOKEN": token,
            "TETHER_CONFORMANCE_OTHER_USER": OTHER_USER,
            "TETHER_CONFORMANCE_OTHER_TOKEN": other,
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "tests/test_hf_api.py",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "--junitxml",
        str(junit),
        "-W",
        "ignore::DeprecationWarning",
    ]
    cmd += [f"--deselect=tests/test_hf_api.py::{prefix}" for prefix in skipped_scope]
    if args.keyword:
        cmd += ["-k", args.keyword]
    started = time.time()
    with (work / "pytest.log").open("w") as log:
        try:
            subprocess.run(
                cmd, cwd=root, env=env, timeout=args.timeout, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    elapsed = time.time() - started
    return report(junit, version, skipped_scope, elapsed, work, args.json)


def report(
    junit: Path,
    version: str,
    scope: dict[str, str],
    elapsed: float,
    work: Path,
    json_path: str | None = None,
) -> int:
    outcomes: Counter[str] = Counter()
    failures: dict[str, list[str]] = defaultdict(list)
    skips: Counter[str] = Counter()
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        skip = case.find("skipped")
        if problem is not None:
            outcomes["failed"] += 1
            failures[cause(problem.get("message", ""))].append(name)
        elif skip is not None:
            outcomes["skipped"] += 1
            skips[cause(skip.get("message", ""))] += 1
        else:
            outcomes["passed"] += 1
    ran = outcomes["passed"] + outcomes["failed"]
    print(
        f"huggingface_hub {version} tests/test_hf_api.py against tether hub serve ({elapsed:.0f} s)"
    )
    print(
        f"passed {outcomes['passed']}, failed {outcomes['failed']} (of {ran} run), "
        f"skipped {outcomes['skipped']}; {len(scope)} out-of-scope entries deselected"
    )
    print("\nfailures by cause:")
    for why, names in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(names):3d}  {why}")
        for name in names[:6]:
            print(f"         {name}")
        if len(names) > 6:
            print(f"         ... and {len(names) - 6} more")
    print("\nskipped by reason:")
    for why, count in skips.most_common():
        print(f"  {count:3d}  {why}")
    print(f"\nlog: {work / 'pytest.log'}; junit: {junit}")
    if json_path:
        figures = {**outcomes, "version": version, "failures": failures, "seconds": elapsed}
        Path(json_path).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
