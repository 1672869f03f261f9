"""The hub token used by push, pull and load never reaches a manifest, card, log, error
message, repr or pickle (in the spirit of tests/test_secrets.py), and it comes from the
usual places: HF_TOKEN, or the `hf auth login` store under HF_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub_server import ThreadHub
from tether import ModelSpec, save

pytestmark = pytest.mark.slow

_EVERYTHING = """
    import json, logging, pickle, sys
    from pathlib import Path
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    from huggingface_hub.utils import logging as hf_logging
    hf_logging.set_verbosity_debug()
    import tether
    pushed = tether.push("{bundle}", "tether/{repo}")
    pulled = tether.pull("tether/{repo}")
    loaded = tether.load_bundle("tether/{repo}")
    artefacts = {{
        "push repr": repr(pushed), "push pickle": pickle.dumps(pushed).decode("latin-1"),
        "pull repr": repr(pulled), "pull pickle": pickle.dumps(pulled).decode("latin-1"),
        "spec repr": repr(loaded.spec), "spec json": loaded.spec.to_json(),
        "spec pickle": pickle.dumps(loaded.spec).decode("latin-1"),
        "loaded repr": repr(loaded),
    }}
    for file in sorted(pulled.path.rglob("*")):
        if file.is_file():
            artefacts["hub file " + str(file.relative_to(pulled.path))] = (
                file.read_bytes().decode("latin-1"))
    try:
        tether.pull("tether/{repo}", token="hf_" + "w" * 34)
    except tether.HubAuthError as exc:
        artefacts["auth error"] = str(exc) + repr(exc.facts)
        artefacts["auth error pickle"] = pickle.dumps(exc).decode("latin-1")
    print(json.dumps({{"artefacts": artefacts, "ok": pulled.ok, "spec": loaded.spec.revision,
                      "commit": pushed.commit}}))
"""


@pytest.fixture(scope="module")
def bundle(tiny, tmp_path_factory) -> Path:
    return save(
        ModelSpec(str(tiny["bert"]), model_class="AutoModel"),
        tmp_path_factory.mktemp("secrets") / "bundle",
    )


def _leaks(out, token: str, bundle: Path) -> list[str]:
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"] and result["spec"] == result["commit"]
    texts = dict(result["artefacts"], stderr=out.stderr, stdout=out.stdout)
    assert "auth error" in texts and "hub file tether.json" in texts
    assert "hub file README.md" in texts
    for file in bundle.rglob("*"):
        if file.is_file():
            texts[f"bundle {file.name}"] = file.read_bytes().decode("latin-1")
    return [name for name, text in texts.items() if token in text]


def test_hf_token_reaches_no_artefact_of_push_pull_and_load(hub: ThreadHub, bundle: Path):
    out = hub.client(_EVERYTHING.format(bundle=bundle, repo="sec-env"))
    assert "DEBUG" in out.stderr  # the logs were on, and were searched
    assert _leaks(out, hub.token, bundle) == []


def test_the_login_store_is_used_and_leaks_nowhere(hub: ThreadHub, bundle: Path):
    store = hub.data.parent / "hf-home" / "token"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(hub.token)
    try:
        out = hub.client(_EVERYTHING.format(bundle=bundle, repo="sec-login"), token=None)
    finally:
        store.unlink()
    assert _leaks(out, hub.token, bundle) == []


def test_a_refused_token_is_not_echoed(hub: ThreadHub, bundle: Path):
    token = "hf_" + "q" * 34
    out = hub.tether("--debug", "push", str(bundle), "tether/sec-wrong", token=token, check=False)
    assert out.returncode != 0 and "HubAuthError" in out.stderr
    assert token not in out.stdout + out.stderr
