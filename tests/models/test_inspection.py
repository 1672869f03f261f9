import hashlib
import json
import shutil

import pytest
import torch

from tether import SourceNotFoundError, inspect
from tether.models.inspection import format_report

EXPECTED = {
    "bert": ("bert", ["pooler"]),
    "bert-mlm": ("bert", ["masked-lm"]),
    "roberta": ("roberta", ["pooler"]),
    "xlmr-mlm": ("xlm-roberta", ["lm-head"]),
    "distilbert-cls": ("distilbert", ["classification"]),
    "gpt2": ("gpt2", []),
    "custom": ("bert", ["pooler"]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_inspect_reports_architecture_heads_and_files(tiny, name):
    report = inspect(str(tiny[name]))
    model_type, heads = EXPECTED[name]
    assert report.model_type == model_type
    assert set(heads) <= set(report.heads)
    assert report.has_tokenizer
    assert [w.format for w in report.weight_files] == ["safetensors"]
    assert report.num_parameters and report.num_parameters > 1000
    assert report.needs_custom_code == (name == "custom")
    text = format_report(report)
    assert model_type in text and "safetensors" in text
    json.dumps(report.to_dict())


def test_inspect_lists_custom_code_with_sha256(tiny):
    report = inspect(str(tiny["custom"]))
    [code] = report.custom_code_files
    assert code.path == "modeling_tiny_custom.py"
    expected = hashlib.sha256((tiny["custom"] / code.path).read_bytes()).hexdigest()
    assert code.sha256 == expected
    assert report.auto_map["AutoModel"] == "modeling_tiny_custom.TinyCustomModel"
    assert "needs trust_remote_code" in format_report(report)


def test_inspect_reports_labels_for_a_classifier(tiny):
    assert inspect(str(tiny["distilbert-cls"])).labels == ["negative", "positive"]


def test_inspect_minilm_reads_sentence_transformers_config(minilm_dir):
    report = inspect(str(minilm_dir))
    assert report.architectures == ["BertModel"]
    st = report.sentence_transformers
    assert st is not None
    assert (st.pooling, st.normalize, st.max_seq_length) == ("mean", True, 256)
    # checkpoint elements: 22,713,216 parameters + the 512-entry position_ids buffer
    assert report.num_parameters == 22_713_728
    assert inspect("minilm").path == report.path


def test_inspect_flags_pickle_weights_without_opening_them(tiny, tmp_path):
    target = tmp_path / "pickled"
    shutil.copytree(tiny["bert"], target)
    (target / "model.safetensors").unlink()
    # A pickle that would run code if unpickled: inspect must not open it.
    (target / "pytorch_model.bin").write_bytes(b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.")
    report = inspect(str(target))
    assert [(w.path, w.format, w.safe) for w in report.weight_files] == [
        ("pytorch_model.bin", "pickle", False)
    ]
    assert any("pickle" in w for w in report.warnings)


def test_inspect_resolves_a_repo_from_the_hf_cache(tiny, tmp_path):
    commit = "0" * 40
    repo = tmp_path / "models--acme--tiny-bert"
    shutil.copytree(tiny["bert"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    report = inspect("acme/tiny-bert", cache_dir=str(tmp_path))
    assert report.model_type == "bert"
    assert report.path.endswith(commit)


def test_inspect_missing_source_says_what_to_do(tmp_path):
    with pytest.raises(SourceNotFoundError) as info:
        inspect("acme/not-cached-anywhere", cache_dir=str(tmp_path))
    assert "hf download" in info.value.hint
    assert info.value.source == "acme/not-cached-anywhere"
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        inspect(str(tmp_path / "nope"))


def test_inspect_reads_safetensors_headers_only(tiny):
    from safetensors.torch import load_file

    report = inspect(str(tiny["bert"]))
    tensors = load_file(str(tiny["bert"] / "model.safetensors"))
    assert report.num_parameters == sum(t.numel() for t in tensors.values())
    assert isinstance(next(iter(tensors.values())), torch.Tensor)
