import json
import pickle
import re

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
    assert info.value.hint != SpecError.default_hint  # a hint for this very problem


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
    "key",
    ["token", "use_auth_token", "hf_token", "auth_token", "access_token", "api_key", "password"],
)
@pytest.mark.parametrize("where", ["load_kwargs", "tokenizer_kwargs"])
def test_secrets_under_any_usual_name_are_refused_and_never_echoed(key, where):
    """A spec travels (JSON, bundles, Beam graphs), so it never holds a credential."""
    with pytest.raises(SpecError) as info:
        ModelSpec("org/m", model_class="AutoModel", **{where: {key: "s3cret", "keep": 1}})
    assert "s3cret" not in str(info.value) and info.value.field == where


@pytest.mark.parametrize("name", ["pad_token", "bos_token", "eos_token", "mask_token"])
def test_tokenizer_options_that_look_like_tokens_are_kept(name):
    spec = ModelSpec("org/m", model_class="AutoModel", tokenizer_kwargs={name: "[PAD]"})
    assert json.loads(spec.to_json())["tokenizer_kwargs"] == {name: "[PAD]"}


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
    assert info.value.hint != SpecError.default_hint  # a hint for this very problem


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


# -- mutants that survived a mutation run (.ci/mutation spec) ------------------------------


def test_spec_json_is_indented_with_sorted_keys_for_readable_diffs():
    spec = ModelSpec("org/m", model_class="AutoModel", revision="r")
    text = spec.to_json()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert text.splitlines()[1].startswith('  "') and not text.splitlines()[1].startswith("   ")
    assert len(spec.to_json(indent=None).splitlines()) == 1


def test_error_messages_name_the_path_and_the_unknown_fields(tmp_path):
    absent = tmp_path / "absent.json"
    with pytest.raises(SpecError, match=re.escape(repr(str(absent)))) as info:
        ModelSpec.load_file(absent)
    assert info.value.hint != SpecError.default_hint
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff")
    with pytest.raises(SpecError, match=re.escape(repr(str(binary)))) as info:
        ModelSpec.load_file(binary)
    assert info.value.hint != SpecError.default_hint
    with pytest.raises(SpecError) as info:
        ModelSpec.from_dict({"source": "m", "model_class": "AutoModel", "zzzz": 1, "yyyy": 2})
    assert "Unknown ModelSpec field(s): 'yyyy', 'zzzz'." in info.value.message
    assert "did you mean" not in info.value.message
    for data in ([], {"model_class": "AutoModel"}):
        with pytest.raises(SpecError) as info:
            ModelSpec.from_dict(data)
        assert info.value.hint != SpecError.default_hint
    with pytest.raises(SpecError, match="not valid JSON") as info:
        ModelSpec.from_json("{")
    assert info.value.hint == "Fix the JSON syntax."


def test_a_transformers_name_that_is_not_a_model_class_is_rejected():
    for name in ("TrainingArguments", "pipeline", "not a name"):
        with pytest.raises(SpecError) as info:
            ModelSpec("m", model_class=name)
        assert info.value.hint != SpecError.default_hint


def test_a_misspelt_task_gets_a_suggestion():
    with pytest.raises(SpecError, match="Unknown pipeline task 'text-clasification'") as info:
        ModelSpec("m", task="text-clasification")
    assert "Did you mean text-classification" in info.value.hint
    assert "Supported tasks: " in info.value.hint and "fill-mask" in info.value.hint


def test_max_length_of_one_is_the_smallest_valid_limit():
    assert ModelSpec("m", model_class="AutoModel", max_length=1).max_length == 1


def test_a_misspelt_class_gets_an_auto_class_suggestion_whatever_its_prefix():
    with pytest.raises(SpecError) as info:
        ModelSpec("m", model_class="AtuoModel")
    assert "Did you mean AutoModel" in info.value.hint
