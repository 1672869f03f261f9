import json

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


def test_token_is_not_written_to_json():
    spec = ModelSpec("org/m", model_class="AutoModel", load_kwargs={"token": "hf_secret"})
    assert "hf_secret" not in spec.to_json()
    assert spec.load_kwargs["token"] == "hf_secret"


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
