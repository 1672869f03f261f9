"""Trust comes only from the user: a bundle's own files never switch on its custom code.

Each entry point that can load a bundle gets a bundle whose custom code writes a marker
file when it is imported. Without the user's trust the marker never appears and the
call fails loudly; with it, the marker appears (proving the planted code is live).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import tiny_models
from tether import ModelSpec, UntrustedCustomCodeError, compare, load, load_bundle, save, verify
from tether.cli.main import cli


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """(bundle dir, marker path): a saved custom-code bundle whose code writes the marker."""
    root = tmp_path_factory.mktemp("planted")
    marker = root / "code-ran"
    source = tiny_models.build_custom(root / "source")
    code = source / "modeling_tiny_custom.py"
    text = code.read_text(encoding="utf-8")
    touch = f"open({str(marker)!r}, 'a').close()"
    # On import and on every model built (the module is imported once per process).
    text = text.replace(
        "        super().__init__(config)\n", f"        super().__init__(config)\n        {touch}\n"
    )
    code.write_text(touch + "\n" + text, encoding="utf-8")
    bundle = save(
        ModelSpec(str(source), model_class="AutoModel", trust_remote_code=True), root / "bundle"
    )
    return bundle, marker


@pytest.fixture
def marker(planted):
    _, marker = planted
    marker.unlink(missing_ok=True)
    yield marker
    marker.unlink(missing_ok=True)


def _cli(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_the_manifest_does_not_record_trust(planted):
    bundle, _ = planted
    spec = json.loads((bundle / "tether.json").read_text())["spec"]
    assert spec["trust_remote_code"] is False and spec["allow_pickle"] is False


def test_even_a_manifest_that_claims_trust_is_not_trusted(planted, marker, tmp_path):
    bundle = Path(shutil.copytree(planted[0], tmp_path / "claims-trust"))
    data = json.loads((bundle / "tether.json").read_text())
    data["spec"]["trust_remote_code"] = True
    data["spec"]["allow_pickle"] = True
    (bundle / "tether.json").write_text(json.dumps(data))
    with pytest.raises(UntrustedCustomCodeError):
        load_bundle(bundle)
    with pytest.raises(UntrustedCustomCodeError):
        verify(bundle)
    assert not marker.exists()


def test_load_bundle(planted, marker):
    with pytest.raises(UntrustedCustomCodeError) as info:
        load_bundle(planted[0])
    assert "modeling_tiny_custom.py" in info.value.files
    assert not marker.exists()
    load_bundle(planted[0], trust_remote_code=True)
    assert marker.exists()


def test_load_of_the_bundle_directory(planted, marker):
    with pytest.raises(UntrustedCustomCodeError):
        load(ModelSpec(str(planted[0]), model_class="AutoModel"))
    assert not marker.exists()


def test_verify(planted, marker):
    with pytest.raises(UntrustedCustomCodeError):
        verify(planted[0])
    assert not marker.exists()
    assert verify(planted[0], trust_remote_code=True).ok
    assert marker.exists()


def test_compare(planted, marker):
    with pytest.raises(UntrustedCustomCodeError):
        compare(str(planted[0]))
    assert not marker.exists()


def test_compare_with_a_spec_file_shipped_inside_a_model_directory(planted, marker, tmp_path):
    """A tether-spec.json next to the weights is the model's file, not the user's."""
    model = Path(shutil.copytree(planted[0], tmp_path / "with-spec"))
    (model / "tether.json").unlink()
    ModelSpec(str(model), model_class="AutoModel", trust_remote_code=True).save(
        model / "tether-spec.json"
    )
    with pytest.raises(UntrustedCustomCodeError):
        compare(str(model))
    assert not marker.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "{bundle}"],
        ["load", "{bundle}"],
        ["compare", "{bundle}", "--no-layers"],
        ["embed", "{bundle}", "-i", "{input}", "-o", "{output}"],
    ],
)
def test_command_line_entry_points(planted, marker, tmp_path, args):
    (tmp_path / "in.txt").write_text("hello\n")
    values = {
        "{bundle}": str(planted[0]),
        "{input}": str(tmp_path / "in.txt"),
        "{output}": str(tmp_path / "out.parquet"),
    }
    result = _cli(*[values.get(a, a) for a in args])
    assert result.exit_code == 2, result.output
    assert "trust_remote_code=True" in result.output
    assert "--trust-remote-code" in result.output
    assert not marker.exists()


def test_command_line_verify_with_the_flag_runs_the_code(planted, marker):
    result = _cli("verify", planted[0], "--trust-remote-code")
    assert result.exit_code == 0, result.output
    assert marker.exists()
