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


def _lines(tmp_path, *texts):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n")
    return source


def test_pipeline_call_arguments_from_the_command_line(tiny, tmp_path):
    """Without max_new_tokens every text-generation row of the tiny GPT-2 failed."""
    import json

    source = _lines(tmp_path, "the quick brown fox", "tether keeps")
    out = tmp_path / "gen.jsonl"
    args = ["run", str(tiny["gpt2"]), "--task", "text-generation", "-i", str(source)]
    args += ["-o", str(out), "--pipeline-arg", "max_new_tokens=3", "--pipeline-arg"]
    args += ["do_sample=false"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "errors 0" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["line"] for row in rows] == [1, 2]
    generated = [row["result"][0]["generated_text"] for row in rows]
    assert generated[0].startswith("the quick brown fox") and len(generated[0]) > 19
    assert generated[1].startswith("tether keeps")


def test_pipeline_arguments_need_a_pipeline_task(tiny, tmp_path):
    source = _lines(tmp_path, "hello")
    args = ["run", str(tiny["bert"]), "-i", str(source), "--pipeline-arg", "top_k=2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "pipeline() tasks only" in result.output


def test_task_auto_is_the_task_of_the_checkpoints_head(tiny, tmp_path):
    import json

    auto = CliRunner().invoke(cli, ["spec", str(tiny["distilbert-cls"]), "--task", "auto"])
    assert auto.exit_code == 0, auto.output
    assert json.loads(auto.output)["task"] == "text-classification"
    base = CliRunner().invoke(cli, ["spec", str(tiny["bert"]), "--task", "auto"])
    assert base.exit_code == 2 and "No task can be inferred" in base.output


def test_load_arguments_from_the_command_line_join_a_spec_files(tiny, tmp_path):
    import json

    spec_file = ModelSpec(
        str(tiny["bert"]), model_class="AutoModel", load_kwargs={"low_cpu_mem_usage": True}
    ).save(tmp_path / "spec.json")
    args = ["spec", "--spec", str(spec_file), "--load-arg", "attn_implementation=eager"]
    args += ["--load-arg", 'subfolder=""']
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["load_kwargs"] == {
        "low_cpu_mem_usage": True,
        "attn_implementation": "eager",
        "subfolder": "",
    }
    bad = CliRunner().invoke(cli, ["spec", str(tiny["bert"]), "--load-arg", "novalue"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
