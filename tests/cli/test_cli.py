import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tether.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_inspect_prints_a_table_and_valid_json(tiny):
    result = run("inspect", str(tiny["custom"]))
    assert result.exit_code == 0
    assert "needs trust_remote_code" in result.output
    assert "modeling_tiny_custom.py" in result.output
    data = json.loads(run("inspect", str(tiny["custom"]), "--json").output)
    assert data["needs_custom_code"] is True
    assert data["custom_code_files"][0]["path"] == "modeling_tiny_custom.py"


def test_inspect_minilm_json(minilm_dir):
    data = json.loads(run("inspect", "minilm", "--json").output)
    assert data["sentence_transformers"]["pooling"] == "mean"
    assert data["weight_files"][0]["format"] == "safetensors"


def test_guard_error_is_one_message_and_exit_2(tiny):
    result = CliRunner().invoke(cli, ["load", str(tiny["custom"])])
    assert result.exit_code == 2
    assert "error:" in result.output and "--trust-remote-code" in result.output
    assert "Traceback" not in result.output


def test_debug_flag_shows_the_exception(tiny):
    from tether import UntrustedCustomCodeError

    result = CliRunner().invoke(cli, ["--debug", "load", str(tiny["custom"])])
    assert isinstance(result.exception, UntrustedCustomCodeError)


def test_load_with_trust_passes_the_guards(tiny):
    result = run("load", str(tiny["custom"]), "--trust-remote-code", "--json")
    data = json.loads(result.output)
    assert data["class"] == "TinyCustomModel"
    assert data["spec"]["trust_remote_code"] is True


def test_spec_command_writes_a_loadable_spec(tiny, tmp_path):
    out = tmp_path / "spec.json"
    assert (
        run(
            "spec", str(tiny["distilbert-cls"]), "--task", "text-classification", "-o", str(out)
        ).exit_code
        == 0
    )
    result = run("load", "--spec", str(out), "--json")
    assert json.loads(result.output)["class"] == "DistilBertForSequenceClassification"


def test_bad_class_name_is_a_clear_error():
    result = CliRunner().invoke(cli, ["spec", "minilm", "--class", "Automodel"])
    assert result.exit_code == 2
    assert "Did you mean AutoModel" in result.output


@pytest.mark.parametrize("command", [[], ["inspect"], ["load"], ["spec"]])
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_python_dash_m_works():
    proc = subprocess.run(
        [sys.executable, "-m", "tether", "--help"], capture_output=True, text=True, check=True
    )
    assert "inspect" in proc.stdout
