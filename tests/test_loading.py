import json
import shutil

import pytest
import torch
from transformers import AutoModel

from conftest import expected_label
from tether import (
    ModelSpec,
    TetherError,
    TokenizerError,
    UnsafeWeightsError,
    UntrustedCustomCodeError,
    WeightMismatchError,
    load,
)

TEXTS = ["hello world, the quick fox", "tether keeps the model you run"]


def _hidden(loaded, texts=TEXTS):
    batch = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return loaded.model(**batch).last_hidden_state


def test_custom_code_round_trip_fails_loudly_without_trust(tiny, tmp_path):
    """The seed scenario: trust -> save_pretrained -> reload without trust must raise."""
    trusted = load(ModelSpec(str(tiny["custom"]), model_class="AutoModel", trust_remote_code=True))
    assert type(trusted.model).__name__ == "TinyCustomModel"
    saved = tmp_path / "saved"
    trusted.model.save_pretrained(saved)
    trusted.tokenizer.save_pretrained(saved)
    assert (saved / "modeling_tiny_custom.py").is_file()

    with pytest.raises(UntrustedCustomCodeError) as info:
        load(ModelSpec(str(saved), model_class="AutoModel"))
    assert "modeling_tiny_custom.py" in info.value.message
    assert "trust_remote_code=True" in info.value.hint

    again = load(ModelSpec(str(saved), model_class="AutoModel", trust_remote_code=True))
    diff = (_hidden(trusted) - _hidden(again)).abs().max().item()
    assert diff == 0.0


def test_plain_transformers_silently_builds_another_model(tiny):
    """Why the guard exists: without trust, transformers loads BertModel with other outputs."""
    trusted = load(ModelSpec(str(tiny["custom"]), model_class="AutoModel", trust_remote_code=True))
    silent = AutoModel.from_pretrained(str(tiny["custom"]))  # no error raised here
    assert type(silent).__name__ == "BertModel"
    batch = trusted.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        diff = (silent(**batch).last_hidden_state - _hidden(trusted)).abs().max().item()
    assert diff > 1e-3


def test_head_class_without_head_weights_errors_by_default(minilm_dir):
    with pytest.raises(WeightMismatchError) as info:
        load(ModelSpec("minilm", model_class="AutoModelForSequenceClassification"))
    assert "classifier.weight" in info.value.message
    assert "newly initialised" in info.value.message
    assert "allow_new_weights=True" in info.value.hint


def test_head_class_loads_with_explicit_allowance(minilm_dir):
    loaded = load(
        ModelSpec(
            "minilm", model_class="AutoModelForSequenceClassification", allow_new_weights=True
        )
    )
    assert loaded.loading_info["missing_keys"] == ["classifier.bias", "classifier.weight"]
    assert type(loaded.model).__name__ == "BertForSequenceClassification"


def test_unused_checkpoint_weights_are_an_error(tiny):
    with pytest.raises(WeightMismatchError) as info:
        load(ModelSpec(str(tiny["bert-mlm"]), model_class="AutoModel"))
    message = info.value.message
    assert "unused" in message and "cls.predictions" in message
    loaded = load(
        ModelSpec(
            str(tiny["bert-mlm"]),
            model_class="AutoModel",
            allow_unused_weights=True,
            allow_new_weights=True,
        )
    )
    assert loaded.loading_info["unexpected_keys"]


def test_pickle_only_weights_are_refused_unless_allowed(tiny, tmp_path):
    target = tmp_path / "pickled"
    shutil.copytree(tiny["bert"], target)
    state = AutoModel.from_pretrained(str(target)).state_dict()
    (target / "model.safetensors").unlink()
    torch.save(state, target / "pytorch_model.bin")
    with pytest.raises(UnsafeWeightsError, match=r"pytorch_model\.bin") as info:
        load(ModelSpec(str(target), model_class="AutoModel"))
    assert "allow_pickle=True" in info.value.hint
    loaded = load(ModelSpec(str(target), model_class="AutoModel", allow_pickle=True))
    reference = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    assert torch.equal(_hidden(loaded), _hidden(reference))


def test_missing_tokenizer_is_an_error(tiny, tmp_path):
    target = tmp_path / "no-tokenizer"
    target.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny["bert"] / name, target / name)
    with pytest.raises(TokenizerError, match="No usable tokenizer"):
        load(ModelSpec(str(target), model_class="AutoModel"))


def test_tokenizer_larger_than_embeddings_is_an_error(tiny, tmp_path):
    from transformers import BertConfig, BertModel

    target = tmp_path / "small-vocab"
    shutil.copytree(tiny["bert"], target)
    config = BertConfig.from_pretrained(str(target))
    config.vocab_size = 20
    BertModel(config).save_pretrained(target)
    with pytest.raises(TokenizerError, match="embedding matrix has only 20 rows"):
        load(ModelSpec(str(target), model_class="AutoModel"))


@pytest.mark.parametrize(
    "name, model_class",
    [
        ("bert", "AutoModel"),
        ("bert-mlm", "AutoModelForMaskedLM"),
        ("roberta", "AutoModel"),
        ("xlmr-mlm", "XLMRobertaForMaskedLM"),
        ("distilbert-cls", "AutoModelForSequenceClassification"),
        ("gpt2", "AutoModelForCausalLM"),
    ],
)
def test_every_tiny_model_loads_cleanly(tiny, name, model_class):
    loaded = load(ModelSpec(str(tiny[name]), model_class=model_class))
    assert not any(loaded.loading_info[k] for k in ("missing_keys", "unexpected_keys"))
    assert not loaded.model.training
    assert loaded.max_length <= 128


def test_task_spec_builds_a_pipeline(tiny):
    loaded = load(ModelSpec(str(tiny["distilbert-cls"]), task="sentiment-analysis"))
    [result] = loaded.pipeline("good great")
    assert result["label"] == expected_label(tiny["distilbert-cls"], "good great")


def test_dtype_is_applied(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel", dtype="bfloat16"))
    assert next(loaded.model.parameters()).dtype == torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_gpu_says_use_auto(tiny):
    with pytest.raises(TetherError, match="no CUDA GPU") as info:
        load(ModelSpec(str(tiny["bert"]), model_class="AutoModel", device="cuda"))
    assert "device='auto'" in info.value.hint
    assert (
        str(load(ModelSpec(str(tiny["bert"]), model_class="AutoModel", device="auto")).device)
        == "cpu"
    )


def test_max_length_comes_from_sentence_transformers_config():
    loaded = load(ModelSpec("minilm", model_class="AutoModel"))
    assert loaded.max_length == 256
    assert load(ModelSpec("minilm", model_class="AutoModel", max_length=64)).max_length == 64


def test_spec_of_loaded_model_is_json_serialisable(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    assert json.loads(loaded.spec.to_json())["source"] == str(tiny["bert"])


def test_a_directory_without_config_is_not_a_model(tmp_path):
    from tether import SourceNotFoundError

    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(SourceNotFoundError, match=r"no config\.json"):
        load(ModelSpec(str(tmp_path), model_class="AutoModel"))


# -- the loader's guards, each on its own (issue 16) ----------------------------------------

from types import SimpleNamespace  # noqa: E402

from tether.loading import (  # noqa: E402
    check_loading_info,
    check_tokenizer_fits,
    check_weight_files,
    resolve_device,
)


def _spec(**kwargs):
    return ModelSpec("org/m", model_class="AutoModel", **kwargs)


@pytest.mark.parametrize(
    "info, allow, fragment",
    [
        ({"missing_keys": ["head.w"]}, {}, "newly initialised"),
        ({"mismatched_keys": ["emb.w"]}, {}, "shape-mismatched"),
        ({"unexpected_keys": ["old.w"]}, {}, "unused"),
        ({"unexpected_keys": ["old.w"]}, {"allow_new_weights": True}, "unused"),
        ({"missing_keys": ["head.w"]}, {"allow_unused_weights": True}, "newly initialised"),
        ({"mismatched_keys": ["emb.w"]}, {"allow_unused_weights": True}, "shape-mismatched"),
    ],
)
def test_each_weight_problem_is_refused_unless_its_own_allowance_is_set(info, allow, fragment):
    with pytest.raises(WeightMismatchError, match=fragment) as error:
        check_loading_info(_spec(**allow), torch.nn.Linear(1, 1), info)
    assert "allow_new_weights=True" in error.value.hint


@pytest.mark.parametrize(
    "info, allow",
    [
        ({"missing_keys": ["h"], "mismatched_keys": ["e"]}, {"allow_new_weights": True}),
        ({"unexpected_keys": ["o"]}, {"allow_unused_weights": True}),
        ({"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}, {}),
    ],
)
def test_allowed_or_absent_weight_problems_pass(info, allow):
    assert check_loading_info(_spec(**allow), torch.nn.Linear(1, 1), info) is None


def test_long_key_lists_are_shortened_with_a_count():
    keys = [f"layer.{i}.w" for i in range(15)]
    with pytest.raises(WeightMismatchError) as error:
        check_loading_info(_spec(), torch.nn.Linear(1, 1), {"missing_keys": keys})
    assert "15 key(s): layer.0.w" in error.value.message
    assert "layer.11.w, ... (+3 more)" in error.value.message
    assert "layer.12.w" not in error.value.message


def _report(safe, pickles):
    return SimpleNamespace(
        has_safe_weights=safe, pickle_weight_files=[SimpleNamespace(path=p) for p in pickles]
    )


def test_pickle_guard_only_fires_for_pickle_only_weights():
    with pytest.raises(UnsafeWeightsError, match=r"only pickle weight files \(a\.bin, b\.pt\)"):
        check_weight_files(_spec(), _report(False, ["a.bin", "b.pt"]))
    assert check_weight_files(_spec(allow_pickle=True), _report(False, ["a.bin"])) is None
    assert check_weight_files(_spec(), _report(True, ["a.bin"])) is None  # safetensors wins
    assert check_weight_files(_spec(), _report(False, [])) is None


def test_tokenizer_fits_at_exactly_the_embedding_size(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    rows = loaded.model.get_input_embeddings().num_embeddings
    assert check_tokenizer_fits([0] * rows, loaded.model) is None
    with pytest.raises(TokenizerError, match=f"has {rows + 1} tokens .* only {rows} rows"):
        check_tokenizer_fits([0] * (rows + 1), loaded.model)
    assert check_tokenizer_fits([0] * 10**6, object()) is None  # no embeddings to check


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type in (expected, "mps")
    if not torch.cuda.is_available():
        with pytest.raises(TetherError, match="device='auto'"):
            resolve_device("cuda:1")


def test_load_kwargs_reach_from_pretrained_and_machine_local_ones_do_not(tiny, monkeypatch):
    import transformers

    seen = {}
    original = transformers.AutoModel.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.update(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", classmethod(spy))
    spec = ModelSpec(
        str(tiny["bert"]),
        model_class="AutoModel",
        dtype="bfloat16",
        load_kwargs={"attn_implementation": "eager", "local_files_only": True, "token": "x"},
    )
    load(spec)
    assert seen["attn_implementation"] == "eager" and seen["use_safetensors"] is True
    assert seen["dtype"] == torch.bfloat16 and seen["trust_remote_code"] is False
    assert "token" not in seen and "local_files_only" not in seen


def test_transformers_load_failures_become_tether_errors(tiny):
    with pytest.raises(TetherError, match=r"could not load .* as AutoModelForSeq2SeqLM") as info:
        load(ModelSpec(str(tiny["bert"]), model_class="AutoModelForSeq2SeqLM"))
    assert "tether inspect" in info.value.hint
