"""The real pretrained all-MiniLM-L6-v2: save -> push -> pull -> load reproduces its
fingerprint with diff 0, and embeds the same texts to the same bits as the shipped model.
push and pull in-process; loading by repo id (HF_ENDPOINT) in a subprocess."""

from __future__ import annotations

import json

import pytest

import tether
from hub_server import ThreadHub
from tether import ModelSpec, save

pytestmark = pytest.mark.slow


def test_minilm_push_pull_load_reproduces_its_fingerprint_exactly(hub: ThreadHub, tmp_path) -> None:
    bundle = save(ModelSpec("minilm", model_class="SentenceTransformer"), tmp_path / "minilm")
    pushed = tether.push(bundle, "tether/minilm", endpoint=hub.endpoint, token=hub.token)
    assert "model.safetensors" in pushed.checked_by_lfs_sha256

    pulled = tether.pull(
        "tether/minilm", endpoint=hub.endpoint, token=hub.token, cache_dir=tmp_path / "cache"
    ).to_dict()
    assert pulled["ok"] and pulled["commit"] == pushed.commit
    assert pulled["report"]["comparison"]["max_abs_diff"] == 0.0

    out = hub.client("""
        import json, torch
        import tether
        from sentence_transformers import SentenceTransformer
        from tether.models.sources import default_model_dir
        loaded = tether.load_bundle("tether/minilm")
        texts = ["A bundle pulled from a hub.", "Le même modèle, ailleurs."]
        here = loaded.model.encode(texts, convert_to_tensor=True)
        shipped = SentenceTransformer(str(default_model_dir()), device="cpu")
        there = shipped.encode(texts, convert_to_tensor=True)
        print(json.dumps({"revision": loaded.spec.revision, "source": loaded.spec.source,
                          "diff": float((here - there).abs().max())}))
    """)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"revision": pushed.commit, "source": "tether/minilm", "diff": 0.0}
