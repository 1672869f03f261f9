"""`tether embed` / `tether run --task embed` on checkpoints that carry a head."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tether import ModelSpec, load
from tether.cli.main import cli
from tether.inference.engine import Engine

TEXTS = ["the quick brown fox", "tether keeps the model you run", "short"]


@pytest.mark.parametrize(
    ("name", "base_class"),
    [("distilbert-cls", "DistilBertModel"), ("xlmr-mlm", "XLMRobertaModel")],
)
@pytest.mark.parametrize("command", [["embed"], ["run", "--task", "embed"]])
def test_embedding_a_checkpoint_with_a_head_loads_it_as_itself(
    tiny, tmp_path, name, base_class, command
):
    """Loading a classifier or masked LM as AutoModel would drop its head (refused);
    as its own class nothing is dropped, and embed reads the base model: the same
    vectors as the base class with the head's weights set aside."""
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(cli, [*command, str(tiny[name]), "-i", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    got = np.stack(pq.read_table(out).column("embedding").to_numpy(zero_copy_only=False))
    base = load(
        ModelSpec(
            str(tiny[name]),
            model_class=base_class,
            allow_unused_weights=True,
            allow_new_weights=True,  # a pooler the MLM never had; embed does not use it
        )
    )
    expected = np.stack([o.inference for o in Engine(base, "embed").predict(TEXTS)])
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-6


def test_an_explicit_class_is_still_taken_at_its_word(tiny, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("hello\n")
    args = ["embed", str(tiny["distilbert-cls"]), "--class", "AutoModel", "-i", str(source)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "allow_unused_weights=True" in result.output
