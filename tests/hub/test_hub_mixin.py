"""A PyTorchModelHubMixin model (the user's own nn.Module, named by import path): saved as a
bundle, pushed, pulled, verified (in-process) and loaded by repo id (in a subprocess, as a
user's script would) against the hub server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import tether
from hub_server import SRC, ThreadHub
from mixin_models import build_tiny_net
from tether import ModelSpec, save

pytestmark = pytest.mark.slow

#: The model class must import where the bundle is pulled, as the user's package would.
IMPORTABLE = {"PYTHONPATH": os.pathsep.join([str(SRC), str(Path(__file__).parents[1])])}


def test_a_mixin_bundle_pushes_pulls_and_verifies(hub: ThreadHub, tmp_path) -> None:
    net = build_tiny_net(tmp_path / "net", width=5, seed=3)
    bundle = save(ModelSpec(str(net), model_class="mixin_models:TinyNet"), tmp_path / "b")
    pushed = tether.push(bundle, "tether/mixin-net", endpoint=hub.endpoint, token=hub.token)
    pulled = tether.pull(
        "tether/mixin-net", endpoint=hub.endpoint, token=hub.token, cache_dir=tmp_path / "c"
    ).to_dict()
    assert pulled["ok"] and pulled["commit"] == pushed.commit
    assert pulled["report"]["comparison"]["max_abs_diff"] == 0.0
    out = hub.client(
        """
        import json, torch
        import tether
        loaded = tether.load_bundle("tether/mixin-net")
        x = torch.ones(1, 5)
        print(json.dumps({"class": loaded.spec.model_class, "rev": loaded.spec.revision,
                          "y": loaded.model(x).tolist()}))
        """,
        env=IMPORTABLE,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["class"] == "mixin_models:TinyNet" and result["rev"] == pushed.commit
    import torch

    from mixin_models import TinyNet

    expected = TinyNet.from_pretrained(str(net))(torch.ones(1, 5)).tolist()
    assert result["y"] == expected
