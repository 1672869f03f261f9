"""transformers, sentence-transformers and PyTorchModelHubMixin against the hub server."""

from __future__ import annotations

import json

import pytest

from hub_server import ThreadHub

pytestmark = pytest.mark.slow


def test_transformers_and_sentence_transformers_round_trip(hub: ThreadHub) -> None:
    """push_to_hub to a branch with '/', then from_pretrained by branch, tag and commit."""
    out = hub.client(
        """
        import json, torch
        from huggingface_hub import HfApi, PyTorchModelHubMixin
        from transformers import AutoModel, BertConfig, BertModel
        api = HfApi()
        api.create_repo("tiny-bert", exist_ok=True)
        api.create_branch("tether/tiny-bert", branch="exp/one", exist_ok=True)
        torch.manual_seed(0)
        config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=32)
        model = BertModel(config).eval()
        commit = model.push_to_hub("tether/tiny-bert", revision="exp/one")
        api.create_tag("tether/tiny-bert", tag="v1", revision="exp/one")
        oid = api.list_repo_refs("tether/tiny-bert").branches
        oid = next(b.target_commit for b in oid if b.name == "exp/one")
        ids = torch.tensor([[1, 2, 3]])
        want = model(ids).last_hidden_state
        same = []
        for rev in ("exp/one", "v1", oid):
            loaded = AutoModel.from_pretrained("tether/tiny-bert", revision=rev)
            same.append(bool(torch.equal(loaded(ids).last_hidden_state, want)))

        class Net(torch.nn.Module, PyTorchModelHubMixin):
            def __init__(self, width: int = 4):
                super().__init__()
                self.lin = torch.nn.Linear(width, 2)
        net = Net(width=4)
        net.push_to_hub("tether/mixin")
        net2 = Net.from_pretrained("tether/mixin")
        same.append(bool(torch.equal(net.lin.weight, net2.lin.weight)))

        import os
        from sentence_transformers import SentenceTransformer, models
        from transformers import BertTokenizerFast
        os.makedirs("st-src", exist_ok=True)
        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghij")
        open("st-src/vocab.txt", "w").write(chr(10).join(words + [f"w{i}" for i in range(49)]))
        BertTokenizerFast("st-src/vocab.txt").save_pretrained("st-src")
        model.save_pretrained("st-src")
        st = SentenceTransformer(modules=[models.Transformer("st-src"),
                                          models.Pooling(16, "mean")], device="cpu")
        api.create_repo("tiny-st", exist_ok=True)
        api.create_branch("tether/tiny-st", branch="feature/st", exist_ok=True)
        st.push_to_hub("tether/tiny-st", revision="feature/st", exist_ok=True)
        st2 = SentenceTransformer("tether/tiny-st", revision="feature/st", device="cpu")
        a, b = st.encode(["a b c"]), st2.encode(["a b c"])
        same.append(bool(abs(a - b).max() < 1e-6))
        print(json.dumps({"same": same}))
    """,
        timeout=600,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["same"] == [True, True, True, True, True]
