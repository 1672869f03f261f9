"""The real pretrained all-MiniLM-L6-v2: save -> push -> pull -> load reproduces its
fingerprint with diff 0, and embeds the same texts to the same bits as the shipped model."""

from __future__ import annotations

import json

import pytest

from hub_server import HubServer
from tether import ModelSpec, save

pytestmark = pytest.mark.slow


def test_minilm_push_pull_load_reproduces_its_fingerprint_exactly(hub: HubServer, tmp_path) -> None:
    bundle = save(ModelSpec("minilm", model_class="SentenceTransformer"), tmp_path / "minilm")
    pushed = json.loads(hub.tether("push", str(bundle), "tether/minilm", "--json").stdout)
    assert "model.safetensors" in pushed["checked_by_lfs_sha256"]

    pulled = json.loads(hub.tether("pull", "tether/minilm", "--json").stdout)
    assert pulled["ok"] and pulled["commit"] == pushed["commit"]
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
    assert result == {"revision": pushed["commit"], "source": "tether/minilm", "diff": 0.0}
