"""Hook capture, module naming and tolerance presets used by parity."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertModel

from tether import ParityError
from tether.parity.hooks import (
    block_names,
    capture,
    comparable_modules,
    first_tensor,
    map_name,
    parse_mapping,
)
from tether.tolerances import PRESETS, get_tolerance


def _tiny_bert(cls=BertModel):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=20,
    )
    return cls(config).eval()


def test_first_tensor_reads_tuples_and_model_outputs():
    t = torch.ones(2)
    assert first_tensor(t) is t
    assert first_tensor((None, (t, torch.zeros(1)))) is t
    out = _tiny_bert()(input_ids=torch.tensor([[1, 2, 3]]))
    assert first_tensor(out) is out.last_hidden_state
    assert first_tensor("text") is None


def test_head_model_names_line_up_with_base_model():
    base = comparable_modules(_tiny_bert())
    head = comparable_modules(_tiny_bert(BertForMaskedLM))
    assert "encoder.layer.1.output.LayerNorm" in base and "encoder.layer.1.output.LayerNorm" in head
    assert "cls.predictions" in head and not any(n.startswith("bert.") for n in head)
    assert not any("dropout" in n for n in base)  # identity in eval: skipped


def test_block_names_pick_embeddings_layers_and_their_blocks():
    blocks = block_names(comparable_modules(_tiny_bert()))
    assert {"embeddings", "encoder.layer.0", "encoder.layer.0.attention", "pooler"} <= blocks
    assert {"encoder.layer.1.intermediate", "encoder.layer.1.output"} <= blocks
    assert "encoder.layer.0.attention.self.query" not in blocks and "encoder" not in blocks


def test_capture_reports_each_module_once_per_forward_in_execution_order():
    model = _tiny_bert()
    seen: list[str] = []
    with capture(comparable_modules(model), lambda name, _t: seen.append(name)) as reset:
        for _ in range(2):  # two forwards, one report each
            reset()
            model(input_ids=torch.tensor([[1, 2, 3]]))
    assert len(seen) == 2 * len(set(seen))
    assert seen.index("embeddings") < seen.index("encoder.layer.0") < seen.index("pooler")
    assert not model.embeddings._forward_hooks  # hooks removed afterwards


def test_mapping_renames_b_prefixes_into_a_names():
    pairs = parse_mapping(["encoder.layer=transformer.h", "=model"])
    assert map_name("transformer.h.3.mlp", pairs) == "encoder.layer.3.mlp"
    assert map_name("model.embeddings", pairs) == "embeddings"  # B has an extra prefix
    assert map_name("embeddings", pairs) == "embeddings"
    assert map_name("embeddings", parse_mapping(["model="])) == "model.embeddings"
    with pytest.raises(ParityError, match="A_PREFIX=B_PREFIX"):
        parse_mapping(["no-equals"])


def test_presets_follow_torch_testing_and_overrides_apply():
    rerun = get_tolerance()
    assert rerun.name == "rerun"
    assert (rerun.atol, rerun.rtol) == (1e-5, 1.3e-6)  # torch.testing float32 defaults
    int8 = PRESETS["optimize-int8"]
    assert int8.min_cosine == 0.99 and not int8.elementwise
    custom = get_tolerance("optimize-int8", atol=1e-2)
    assert custom.elementwise and custom.atol == 1e-2 and custom.min_cosine == 0.99
    with pytest.raises(ParityError, match="Unknown tolerance preset"):
        get_tolerance("fp8")
    with pytest.raises(ParityError, match="out of range"):
        get_tolerance(min_cosine=1.5)
