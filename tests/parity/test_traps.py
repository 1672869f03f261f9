"""Comparing two different models honestly: the three traps of issue 15, each a real
``tether compare`` run through the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tether import compare
from tether.cli.main import cli

MIN_TOPK_TEXTS = 200  # tether.parity.compare.MIN_TOPK_TEXTS


def test_each_side_uses_its_own_tokenizer_and_the_report_says_so(tiny):
    """Trap 1: A's tokenizer silently fed into B (BERT word pieces into RoBERTa's BPE)."""
    args = ["compare", str(tiny["bert"]), str(tiny["roberta"]), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output  # a real difference: exit 1, not 0 or 2
    data = json.loads(result.output)
    assert any("tokenize the texts differently" in n for n in data["notes"])
    outputs = {o["name"] for o in data["outputs"]}
    assert "last_hidden_state" not in outputs  # per-token outputs are not comparable
    assert outputs == {"pooler_output"} and data["embedding"] is not None
    assert data["modules"] == []  # nor are layers, token by token
    assert data["embedding"]["cos_min"] < 0.5  # two unrelated models


@pytest.mark.slow
def test_models_of_different_sizes_are_an_error_exit_2_not_a_crash(minilm_dir, tiny):
    """Trap 2: ``tether compare minilm tiny/bert`` crashed with IndexError, exit 1."""
    result = CliRunner().invoke(cli, ["compare", "minilm", str(tiny["bert"])])
    assert result.exit_code == 2, result.output
    assert "error: 'minilm' and " in result.output
    assert "different sizes (expected [12, 384] vs actual [12, 32])" in result.output
    assert "Traceback" not in result.output


def test_a_tokenizer_past_the_models_vocabulary_is_an_error_exit_2(tiny, tmp_path, monkeypatch):
    """Trap 2, without MiniLM: RoBERTa's token ids fed to BERT's smaller vocabulary."""
    module = tmp_path / "wrong_vocab.py"
    module.write_text(
        "def bert(reference):\n"
        "    from transformers import AutoModel\n"
        f"    return AutoModel.from_pretrained({str(tiny['bert'])!r})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(cli, ["compare", str(tiny["roberta"]), "wrong_vocab:bert"])
    assert result.exit_code == 2, result.output
    assert "does not fit the model" in result.output or "failed on the tokenized" in result.output
    assert "Traceback" not in result.output


def test_topk_overlap_needs_enough_texts(tiny):
    """Trap 3: with 12 texts and k = 10 of 11 neighbours, overlap read 1.000 at cosine 0.07."""
    few = compare(str(tiny["bert"]), str(tiny["roberta"]))
    assert few.topk is None
    assert any(f"at least {MIN_TOPK_TEXTS}" in n for n in few.notes)
    assert "Nearest neighbours" not in few.format()
    texts = [f"text {i}: the quick brown fox, {i % 7} times" for i in range(MIN_TOPK_TEXTS)]
    enough = compare(str(tiny["bert"]), str(tiny["roberta"]), texts=texts, layers=False)
    assert enough.topk is not None and enough.topk.k == 10
    assert enough.topk.mean_overlap < 0.9  # unrelated models do not share neighbours
    result = CliRunner().invoke(
        cli, ["compare", str(tiny["bert"]), str(tiny["roberta"]), "--min-topk", "0.5"]
    )
    assert result.exit_code == 2 and "at least 200 texts" in result.output
