"""The real pretrained all-MiniLM-L6-v2: save -> push -> pull -> load reproduces its
fingerprint with diff 0, and embeds the same texts to the same bits as the shipped model.
In-process: push and pull with ``endpoint=``, loading by repo id through hf_env."""

from __future__ import annotations

import pytest

import tether
from hub_server import ThreadHub
from tether import ModelSpec, save

pytestmark = pytest.mark.slow


def test_minilm_push_pull_load_reproduces_its_fingerprint_exactly(
    hf_env: ThreadHub, tmp_path
) -> None:
    hub = hf_env
    bundle = save(ModelSpec("minilm", model_class="SentenceTransformer"), tmp_path / "minilm")
    pushed = tether.push(bundle, "tether/minilm", endpoint=hub.endpoint, token=hub.token)
    assert "model.safetensors" in pushed.checked_by_lfs_sha256

    pulled = tether.pull(
        "tether/minilm", endpoint=hub.endpoint, token=hub.token, cache_dir=tmp_path / "cache"
    ).to_dict()
    assert pulled["ok"] and pulled["commit"] == pushed.commit
    assert pulled["report"]["comparison"]["max_abs_diff"] == 0.0

    from sentence_transformers import SentenceTransformer

    from tether.models.sources import default_model_dir

    loaded = tether.load_bundle("tether/minilm")
    texts = ["A bundle pulled from a hub.", "Le même modèle, ailleurs."]
    here = loaded.model.encode(texts, convert_to_tensor=True)
    shipped = SentenceTransformer(str(default_model_dir()), device="cpu")
    there = shipped.encode(texts, convert_to_tensor=True)
    assert (loaded.spec.revision, loaded.spec.source) == (pushed.commit, "tether/minilm")
    assert float((here - there).abs().max()) == 0.0
