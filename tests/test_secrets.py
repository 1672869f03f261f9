"""A planted hub token never reaches a repr, a pickle, a file, a log or an error message.

The token lives where it should (an environment variable named by ``token_env``);
every artefact tether produces from that spec is searched for it.
"""

from __future__ import annotations

import logging
import pickle

import pytest

from tether import ModelSpec, SourceNotFoundError, load, save

TOKEN = "hf_plantedTokenForTheSecretsTest0123456789"


@pytest.fixture
def planted(monkeypatch):
    monkeypatch.setenv("TETHER_TEST_HUB_TOKEN", TOKEN)
    return "TETHER_TEST_HUB_TOKEN"


def test_no_artefact_of_a_load_and_save_holds_the_token(tiny, tmp_path, planted, caplog):
    caplog.set_level(logging.DEBUG)
    spec = ModelSpec(str(tiny["bert"]), model_class="AutoModel", token_env=planted)
    loaded = load(spec)
    bundle = save(loaded, tmp_path / "bundle")
    artefacts = {
        "repr(spec)": repr(spec),
        "spec JSON": spec.to_json(),
        "pickle(spec)": pickle.dumps(spec).decode("latin-1"),
        "repr(loaded)": repr(loaded),
        "logs": caplog.text,
    }
    for path in sorted(bundle.rglob("*")):
        if path.is_file():
            artefacts[str(path.relative_to(bundle))] = path.read_bytes().decode("latin-1")
    assert "README.md" in artefacts and "tether.json" in artefacts
    leaks = [name for name, text in artefacts.items() if TOKEN in text]
    assert not leaks


def test_a_beam_handler_and_its_pickle_hold_no_token(tiny, planted):
    from tether.beam import TextEmbeddingHandler

    spec = ModelSpec(str(tiny["bert"]), model_class="AutoModel", token_env=planted)
    handler = TextEmbeddingHandler(spec)
    assert TOKEN not in pickle.dumps(handler).decode("latin-1")
    assert TOKEN not in repr(handler)


def test_errors_while_fetching_do_not_echo_the_token(planted, tmp_path):
    spec = ModelSpec(
        "acme/not-cached-anywhere",
        model_class="AutoModel",
        token_env=planted,
        load_kwargs={"cache_dir": str(tmp_path)},
    )
    with pytest.raises(SourceNotFoundError) as info:
        load(spec)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.facts)


def test_the_token_itself_is_refused_in_every_kwargs_field(tiny):
    from tether import SpecError

    for field in ("load_kwargs", "tokenizer_kwargs"):
        with pytest.raises(SpecError) as info:
            ModelSpec(str(tiny["bert"]), model_class="AutoModel", **{field: {"token": TOKEN}})
        assert TOKEN not in str(info.value)
