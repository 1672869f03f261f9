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


# -- validation and serialisation edges (issue 16) ---------------------------------------


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:1", "cuda:12", "mps", "auto"])
def test_valid_device_strings_are_accepted(device):
    assert ModelSpec("m", model_class="AutoModel", device=device).device == device


@pytest.mark.parametrize(
    "device", ["cudax", "cuda:", "cuda:x", "cuda1", "xcpu", "cpu ", "cuda\n", "CPU", "", "gpu:0"]
)
def test_invalid_device_strings_are_rejected(device):
    with pytest.raises(SpecError, match="Unknown device"):
        ModelSpec("m", model_class="AutoModel", device=device)


@pytest.mark.parametrize(
    "key", ["token", "use_auth_token", "hf_token", "auth_token", "api_key", "password"]
)
@pytest.mark.parametrize("where", ["load_kwargs", "tokenizer_kwargs"])
def test_secrets_under_any_usual_name_are_not_written_to_json(key, where):
    spec = ModelSpec("org/m", model_class="AutoModel", **{where: {key: "hf_s3cret", "keep": 1}})
    text = spec.to_json()
    assert "hf_s3cret" not in text and key not in json.loads(text)[where]
    assert json.loads(text)[where] == {"keep": 1}  # the other options are kept
    assert getattr(spec, where)[key] == "hf_s3cret"  # still used to load


def test_tokenizer_options_that_look_like_tokens_are_kept():
    spec = ModelSpec("org/m", model_class="AutoModel", tokenizer_kwargs={"pad_token": "[PAD]"})
    assert json.loads(spec.to_json())["tokenizer_kwargs"] == {"pad_token": "[PAD]"}


@pytest.mark.parametrize(
    "key, field",
    [
        ("revision", "revision"),
        ("trust_remote_code", "trust_remote_code"),
        ("dtype", "dtype"),
        ("torch_dtype", "dtype"),
        ("pretrained_model_name_or_path", "source"),
        ("device_map", "device"),
    ],
)
def test_load_kwargs_may_not_override_a_field_the_spec_owns(key, field):
    with pytest.raises(SpecError, match=f"load_kwargs sets '{key}'") as info:
        ModelSpec("m", model_class="AutoModel", load_kwargs={key: "x"})
    assert f"{field}=" in info.value.hint


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        '{"source": "m", "model_class": "AutoModel",}',
        "[1, 2]",
        "null",
        '"a string"',
        '{"model_class": "AutoModel"}',
        '{"source": "m", "model_class": "AutoModel", "device": 1}',
        '{"source": "m", "model_class": 5}',
        '{"source": "m", "task": ["fill-mask"]}',
        '{"source": "m", "model_class": "AutoModel", "dtype": {}}',
        '{"source": "m", "model_class": "AutoModel", "pooling": ["mean"]}',
        '{"source": "m", "model_class": "AutoModel", "revision": 3}',
        '{"source": "m", "model_class": "AutoModel", "tokenizer": 3}',
        '{"source": "m", "model_class": "AutoModel", "trust_remote_code": "false"}',
        '{"source": "m", "model_class": "AutoModel", "allow_pickle": 1}',
        '{"source": "m", "model_class": "AutoModel", "normalize": "yes"}',
        '{"source": "m", "model_class": "AutoModel", "max_length": true}',
        '{"source": "m", "model_class": "AutoModel", "max_length": 1.5}',
        '{"source": "m", "model_class": "AutoModel", "load_kwargs": []}',
    ],
)
def test_malformed_spec_files_raise_spec_error(tmp_path, text):
    path = tmp_path / "spec.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        ModelSpec.load_file(path)
    assert info.value.hint


def test_a_spec_file_that_is_not_utf8_or_not_a_file_raises_spec_error(tmp_path):
    path = tmp_path / "spec.json"
    path.write_bytes(b'{"source": "\xff\xfe"}')
    with pytest.raises(SpecError, match="UTF-8"):
        ModelSpec.load_file(path)
    with pytest.raises(SpecError, match="does not exist"):
        ModelSpec.load_file(tmp_path)


def test_model_id_carries_the_revision():
    assert ModelSpec("org/m", model_class="AutoModel", revision="abc123").model_id == (
        "org/m@abc123"
    )
    assert ModelSpec("org/m", model_class="AutoModel").model_id == "org/m"


def test_replace_validates_again_and_keeps_other_fields():
    spec = ModelSpec("org/m", model_class="AutoModel", revision="r1", max_length=8)
    again = spec.replace(device="cuda:1")
    assert (again.device, again.revision, again.max_length) == ("cuda:1", "r1", 8)
    with pytest.raises(SpecError, match="Unknown device"):
        spec.replace(device="cudax")


def test_every_field_survives_the_json_round_trip():
    import dataclasses

    spec = ModelSpec(
        "org/m",
        model_class="AutoModel",
        revision="r",
        trust_remote_code=True,
        dtype="float16",
        device="cuda:1",
        tokenizer="org/tok",
        tokenizer_kwargs={"use_fast": False},
        max_length=12,
        pooling="last",
        normalize=False,
        allow_new_weights=True,
        allow_unused_weights=True,
        allow_pickle=True,
        load_kwargs={"attn_implementation": "eager"},
    )
    data = json.loads(spec.to_json())
    assert set(data) == {f.name for f in dataclasses.fields(ModelSpec)}
    for f in dataclasses.fields(ModelSpec):
        assert data[f.name] == getattr(spec, f.name), f.name
    assert ModelSpec.from_dict(data) == spec


def test_from_dict_needs_a_source_and_an_object():
    with pytest.raises(SpecError, match="no 'source'"):
        ModelSpec.from_dict({"model_class": "AutoModel"})
    with pytest.raises(SpecError, match="JSON object, got list"):
        ModelSpec.from_dict([])
    with pytest.raises(SpecError, match="is empty"):
        ModelSpec("  ", model_class="AutoModel")
