"""transformers, sentence-transformers and PyTorchModelHubMixin against the hub server,
in-process: they take no endpoint=, so huggingface_hub is pointed at the hub as
HF_ENDPOINT would point it (the hf_env fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_server import ThreadHub

pytestmark = pytest.mark.slow


def test_transformers_and_sentence_transformers_round_trip(
    hf_env: ThreadHub, tmp_path: Path
) -> None:
    """push_to_hub to a branch with '/', then from_pretrained by branch, tag and commit."""
    import torch
    from huggingface_hub import HfApi, PyTorchModelHubMixin
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoModel, BertConfig, BertModel, BertTokenizerFast

    api = HfApi()
    api.create_repo("tiny-bert", exist_ok=True)
    api.create_branch("tether/tiny-bert", branch="exp/one", exist_ok=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = BertModel(config).eval()
    model.push_to_hub("tether/tiny-bert", revision="exp/one")
    api.create_tag("tether/tiny-bert", tag="v1", revision="exp/one")
    branches = api.list_repo_refs("tether/tiny-bert").branches
    oid = next(b.target_commit for b in branches if b.name == "exp/one")
    ids = torch.tensor([[1, 2, 3]])
    want = model(ids).last_hidden_state
    for rev in ("exp/one", "v1", oid):
        loaded = AutoModel.from_pretrained("tether/tiny-bert", revision=rev)
        assert torch.equal(loaded(ids).last_hidden_state, want), rev

    class Net(torch.nn.Module, PyTorchModelHubMixin):
        def __init__(self, width: int = 4) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(width, 2)

    net = Net(width=4)
    net.push_to_hub("tether/mixin")
    assert torch.equal(net.lin.weight, Net.from_pretrained("tether/mixin").lin.weight)

    src = tmp_path / "st-src"
    src.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghij"]
    (src / "vocab.txt").write_text("\n".join(words + [f"w{i}" for i in range(49)]))
    BertTokenizerFast(str(src / "vocab.txt")).save_pretrained(str(src))
    model.save_pretrained(str(src))
    st = SentenceTransformer(
        modules=[models.Transformer(str(src)), models.Pooling(16, "mean")], device="cpu"
    )
    api.create_repo("tiny-st", exist_ok=True)
    api.create_branch("tether/tiny-st", branch="feature/st", exist_ok=True)
    st.push_to_hub("tether/tiny-st", revision="feature/st", exist_ok=True)
    st2 = SentenceTransformer("tether/tiny-st", revision="feature/st", device="cpu")
    a, b = st.encode(["a b c"]), st2.encode(["a b c"])
    assert abs(a - b).max() < 1e-6
