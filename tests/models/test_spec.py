import json
import pickle

import pytest

from tether import ModelSpec, SpecError


def test_spec_round_trips_through_json():
    spec = ModelSpec(
        "org/model",
        model_class="AutoModelForSequenceClassification",
        revision="abc123",
        trust_remote_code=True,
        dtype="bfloat16",
        device="auto",
        max_length=64,
        pooling="cls",
        normalize=True,
        tokenizer_kwargs={"use_fast": True},
        load_kwargs={"attn_implementation": "eager"},
    )
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec
    assert json.loads(spec.to_json())["trust_remote_code"] is True


def test_spec_file_round_trip(tmp_path):
    spec = ModelSpec("minilm", model_class="AutoModel")
    path = spec.save(tmp_path / "spec.json")
    assert ModelSpec.load_file(path) == spec


TOKEN = "hf_plantedSecretToken1234567890"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"load_kwargs": {"token": TOKEN}},
        {"load_kwargs": {"use_auth_token": TOKEN}},
        {"load_kwargs": {"HF_TOKEN": TOKEN}},
        {"load_kwargs": {"proxies": {"https": "x", "auth_token": TOKEN}}},
        {"load_kwargs": {"headers": [TOKEN]}},  # a token by its shape, under any key
        {"tokenizer_kwargs": {"token": TOKEN}},
        {"tokenizer_kwargs": {"api_key": "not-hf-shaped-but-named-a-secret"}},
    ],
)
def test_a_credential_anywhere_in_a_spec_is_refused_without_echoing_it(kwargs):
    with pytest.raises(SpecError) as info:
        ModelSpec("org/m", model_class="AutoModel", **kwargs)
    assert TOKEN not in str(info.value) and "not-hf-shaped" not in str(info.value)
    assert "token_env" in info.value.hint
    assert info.value.field in ("load_kwargs", "tokenizer_kwargs")


def test_harmless_kwargs_that_mention_tokens_by_name_only_are_fine():
    spec = ModelSpec("org/m", model_class="AutoModel", load_kwargs={"token": None})
    assert spec.load_kwargs == {"token": None}
    ModelSpec("org/m", model_class="AutoModel", tokenizer_kwargs={"add_prefix_space": True})


def test_token_env_names_a_variable_read_at_load_time(monkeypatch):
    spec = ModelSpec("org/m", model_class="AutoModel", token_env="MY_HUB_TOKEN")
    monkeypatch.setenv("MY_HUB_TOKEN", TOKEN)
    assert spec.token() == TOKEN
    assert TOKEN not in spec.to_json() + repr(spec) + str(pickle.dumps(spec))
    monkeypatch.delenv("MY_HUB_TOKEN")
    with pytest.raises(SpecError, match="not set"):
        spec.token()
    with pytest.raises(SpecError, match="environment variable"):
        ModelSpec("org/m", model_class="AutoModel", token_env=TOKEN + "-x")
    assert ModelSpec("org/m", model_class="AutoModel").token() is None


def test_unknown_class_name_is_rejected_with_suggestion():
    with pytest.raises(
        SpecError, match="Unknown model class 'AutoModelForSequenceClasification'"
    ) as info:
        ModelSpec("m", model_class="AutoModelForSequenceClasification")
    assert "AutoModelForSequenceClassification" in info.value.hint


def test_tokenizer_class_is_not_a_model_class():
    with pytest.raises(SpecError):
        ModelSpec("m", model_class="AutoTokenizer")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model_class": "AutoModel", "task": "fill-mask"}, "both"),
        ({}, "neither"),
        ({"model_class": "AutoModel", "dtype": "float64"}, "Unknown dtype"),
        ({"model_class": "AutoModel", "device": "gpu"}, "Unknown device"),
        ({"model_class": "AutoModel", "pooling": "avg"}, "Unknown pooling"),
        ({"model_class": "AutoModel", "max_length": 0}, "max_length"),
        ({"task": "sentiment-analyzer"}, "Unknown pipeline task"),
        ({"model_class": "AutoModel", "load_kwargs": {"trust_remote_code": True}}, "own"),
    ],
)
def test_invalid_specs_raise_clear_errors(kwargs, message):
    with pytest.raises(SpecError, match=message) as info:
        ModelSpec("m", **kwargs)
    assert info.value.hint


def test_unknown_json_field_is_an_error_not_ignored():
    with pytest.raises(SpecError, match="did you mean 'trust_remote_code'"):
        ModelSpec.from_dict({"source": "m", "model_class": "AutoModel", "trust_remote": True})


def test_task_aliases_are_accepted():
    assert ModelSpec("m", task="sentiment-analysis").task == "sentiment-analysis"


def test_sentence_transformer_class_is_accepted():
    assert ModelSpec("m", model_class="SentenceTransformer").is_sentence_transformers
