"""The command line's error handler: one message, a hint with flags, exit 2, no traceback;
and the library's own hints name API arguments, never flags."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tether import OutputError, UntrustedCustomCodeError
from tether.cli.errors import FLAG_FOR_ARGUMENT, flags_for, format_error
from tether.cli.main import cli

SRC = Path(__file__).resolve().parents[2] / "src" / "tether"


def test_hint_arguments_become_flags_once_each_in_order():
    assert flags_for(
        "set allow_new_weights=True or allow_unused_weights=True; allow_new_weights="
    ) == [
        "--allow-new-weights",
        "--allow-unused-weights",
    ]
    assert flags_for("Pass device='auto'.") == ["--device"]
    assert flags_for("nothing to translate here") == []


def test_format_error_adds_the_flags_to_the_library_hint():
    error = OutputError("Output x exists.", "Pass overwrite=True to replace it.", path="x")
    message, hint = format_error(error)
    assert message == "error: Output x exists."
    assert hint == "  -> Pass overwrite=True to replace it. (command line: --overwrite)"


def test_every_flag_in_the_table_exists_on_some_command():
    """A hint must never point at a flag the command line does not have."""
    import click

    def flags(command: click.Command) -> set[str]:
        found = {o for p in command.params for o in getattr(p, "opts", [])}
        for sub in getattr(command, "commands", {}).values():
            found |= flags(sub)
        return found

    assert set(FLAG_FOR_ARGUMENT.values()) <= flags(cli)


def test_guard_error_on_the_command_line_names_the_flag(tiny):
    result = CliRunner().invoke(cli, ["load", str(tiny["custom"])])
    assert result.exit_code == 2
    assert "trust_remote_code=True" in result.output
    assert "(command line: --trust-remote-code)" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["embed", "-i", "{input}", "--max-tokens", "-5"],
        ["embed", "-i", "{input}", "--max-rows", "0"],
        ["embed", "-i", "{input}", "--chunk-size", "0"],
        ["run", "-i", "{input}", "--top-k", "0"],
        ["compare", "minilm", "--min-cosine", "1.5"],
        ["compare", "minilm", "--atol", "-1"],
    ],
)
def test_bad_numbers_are_refused_before_any_model_loads(args, tmp_path, monkeypatch):
    import tether.models.loading as loading

    def no_loading(spec):  # the edge must refuse the option before a model is loaded
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(loading, "load", no_loading)
    (tmp_path / "in.txt").write_text("hello\n")
    argv = [a.replace("{input}", str(tmp_path / "in.txt")) for a in args]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output
    assert "Traceback" not in result.output and result.exception is not None


def _error_call_strings(tree: ast.AST) -> list[str]:
    """String constants passed to ``SomethingError(...)`` calls."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name.endswith("Error"):
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    found += [
                        c.value
                        for c in ast.walk(arg)
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)
                    ]
    return found


def test_library_error_messages_name_api_arguments_not_flags():
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if "cli" in path.relative_to(SRC).parts:
            continue
        for text in _error_call_strings(ast.parse(path.read_text(encoding="utf-8"))):
            offenders += [f"{path.relative_to(SRC)}: {m}" for m in flag.findall(text)]
    assert not offenders


def test_the_flag_scanner_sees_flags():
    tree = ast.parse('raise InputError("bad", "Pass --text-column x.")')
    assert _error_call_strings(tree) == ["bad", "Pass --text-column x."]


def test_untrusted_code_error_exits_2_in_debug_off_mode(tiny):
    result = CliRunner().invoke(cli, ["load", str(tiny["custom"])])
    assert isinstance(result.exception, SystemExit)
    assert not isinstance(result.exception, UntrustedCustomCodeError)
