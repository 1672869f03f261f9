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


def _error(call):
    with pytest.raises(SpecError) as info:
        call()
    return info.value


def test_a_credential_error_names_where_it_sits_and_how_to_pass_a_token_instead():
    nested = {"proxies": {"https": "x", "auth_token": "secret-value"}}
    error = _error(lambda: ModelSpec("m", model_class="AutoModel", load_kwargs=nested))
    assert error.message == (
        "ModelSpec.load_kwargs['proxies']['auth_token'] holds a credential. A spec is written "
        "to JSON, bundles, Beam job graphs and logs, so it never carries one."
    )
    assert error.hint == (
        "Leave the token out: huggingface_hub reads HF_TOKEN or the `hf auth login` store on "
        "the machine that loads, or set token_env='VAR' to name another environment variable."
    )
    assert error.field == "load_kwargs"


def test_a_credential_key_switched_off_with_false_or_none_is_no_credential():
    for off in (None, False):
        spec = ModelSpec("m", model_class="AutoModel", load_kwargs={"token": off})
        assert spec.load_kwargs == {"token": off}


def test_token_env_that_is_not_set_names_the_variable(monkeypatch):
    monkeypatch.delenv("TETHER_NO_SUCH_TOKEN_VAR", raising=False)
    spec = ModelSpec("m", model_class="AutoModel", token_env="TETHER_NO_SUCH_TOKEN_VAR")
    error = _error(spec.token)
    assert error.message == (
        "token_env='TETHER_NO_SUCH_TOKEN_VAR' names an environment variable that is not set "
        "on this machine."
    )
    assert error.hint == (
        "Set TETHER_NO_SUCH_TOKEN_VAR where the model is loaded (for Beam: on the workers)."
    )
    assert error.field == "token_env"


def test_spec_file_and_dict_errors_have_their_own_message_and_hint(tmp_path):
    absent = tmp_path / "absent.json"
    error = _error(lambda: ModelSpec.load_file(absent))
    assert (error.message, error.hint) == (
        f"Spec file {str(absent)!r} does not exist.",
        "Check the path.",
    )
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff")
    error = _error(lambda: ModelSpec.load_file(binary))
    assert error.message.startswith(f"Spec file {str(binary)!r} is not UTF-8 text (")
    assert error.hint == "Save the spec as UTF-8 JSON (ModelSpec.save writes one)."
    error = _error(lambda: ModelSpec.from_dict(["source"]))
    assert (error.message, error.hint) == (
        "A spec must be a JSON object, got list.",
        'Write the spec as {"source": ..., "model_class": ...}.',
    )
    error = _error(lambda: ModelSpec.from_dict({"model_class": "AutoModel"}))
    assert (error.message, error.hint) == (
        "The spec has no 'source'.",
        'Add "source": REPO_ID_OR_DIR.',
    )
    error = _error(lambda: ModelSpec.from_dict({"source": "m", "revison": "x"}))
    assert error.message == "Unknown ModelSpec field(s): 'revison' (did you mean 'revision'?)."
    fields = sorted(f.name for f in __import__("dataclasses").fields(ModelSpec))
    assert error.hint == f"Valid fields are: {', '.join(fields)}."


def test_task_errors_list_every_supported_task_and_up_to_two_guesses():
    from transformers.pipelines import SUPPORTED_TASKS

    supported = f"Supported tasks: {', '.join(sorted(SUPPORTED_TASKS))}."
    error = _error(lambda: ModelSpec("m", task="zzzz-qqqq"))
    assert error.hint == supported  # no guess, no "Did you mean"
    error = _error(lambda: ModelSpec("m", task="image-classificatio"))  # 5 tasks are close
    assert error.hint == ("Did you mean image-classification, video-classification? " + supported)


def test_a_missing_sentence_transformers_names_its_extra(monkeypatch):
    import sys

    from tether.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    with pytest.raises(MissingExtraError) as info:
        ModelSpec("m", model_class="SentenceTransformer")
    assert info.value.extra == "sentence-transformers"
    assert "pip install 'tether[sentence-transformers]'" in info.value.hint


_AM = {"model_class": "AutoModel"}


@pytest.mark.parametrize(
    "kwargs, message, hint",
    [
        (
            {"source": " ", **_AM},
            "ModelSpec.source is empty.",
            "Pass a hub repo id or a local directory.",
        ),
        (
            {"revision": 3, **_AM},
            "ModelSpec.revision must be a string, got int 3.",
            "Pass revision='...' as a string, or leave it unset.",
        ),
        (
            {"dtype": 16, **_AM},
            "ModelSpec.dtype must be a string, got int 16.",
            "Pass dtype='...' as a string.",
        ),
        (
            {"allow_pickle": 1, **_AM},
            "ModelSpec.allow_pickle must be True or False, got 1.",
            "Pass allow_pickle=True or allow_pickle=False (JSON true / false).",
        ),
        (
            {"normalize": "yes", **_AM},
            "ModelSpec.normalize must be True, False or None, got 'yes'.",
            "Pass normalize=True or normalize=False, or leave it unset.",
        ),
        (
            {"task": "fill-mask", **_AM},
            "ModelSpec sets both model_class='AutoModel' and task='fill-mask'.",
            "Set model_class to load a model class, or task to build a pipeline(), not both.",
        ),
        (
            {},
            "ModelSpec sets neither model_class nor task.",
            "Set model_class (e.g. 'AutoModel' for embeddings) or task "
            "(e.g. 'text-classification').",
        ),
        (
            {"device": "gpu", **_AM},
            "Unknown device 'gpu'.",
            "Use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (GPU when the worker has one).",
        ),
        (
            {"max_length": 0, **_AM},
            "max_length must be a positive integer, got 0.",
            "Pass e.g. max_length=256, or leave it unset to use the model's limit.",
        ),
        (
            {"load_kwargs": [], **_AM},
            "ModelSpec.load_kwargs must be a dict.",
            "Pass load_kwargs={...}.",
        ),
        (
            {"token_env": "not a name", **_AM},
            "token_env must name an environment variable, got 'not a name'.",
            "Pass the variable's name, e.g. token_env='HF_TOKEN_READ', never the token.",
        ),
        (
            {"load_kwargs": {"torch_dtype": "float16"}, **_AM},
            "load_kwargs sets 'torch_dtype', which ModelSpec owns as its field 'dtype'.",
            "Pass dtype=... to ModelSpec instead of load_kwargs, so the spec records it.",
        ),
        (
            {"model_class": "not a name"},
            "'not a name' is not a class name.",
            "Use e.g. 'AutoModel'.",
        ),
    ],
    ids=lambda value: next(iter(value), "none") if isinstance(value, dict) else "",
)
def test_each_invalid_field_has_its_own_message_and_hint(kwargs, message, hint):
    error = _error(lambda: ModelSpec(**{"source": "m", **kwargs}))
    assert (error.message, error.hint) == (message, hint)


def test_unknown_dtype_and_pooling_list_the_valid_values():
    from tether.constants import DTYPES, POOLING_MODES

    error = _error(lambda: ModelSpec("m", model_class="AutoModel", dtype="float8"))
    assert (error.message, error.hint) == (
        "Unknown dtype 'float8'.",
        f"Use one of: {', '.join(DTYPES)}.",
    )
    error = _error(lambda: ModelSpec("m", model_class="AutoModel", pooling="avg"))
    assert error.message == "Unknown pooling 'avg'."
    assert error.hint == (
        f"Use one of: {', '.join(POOLING_MODES)}, or leave it unset to use the model's own "
        "pooling config."
    )


def test_unknown_model_class_message_and_up_to_three_suggestions():
    import transformers

    tail = "Use a transformers model class name such as 'AutoModel', or set task instead."
    error = _error(lambda: ModelSpec("m", model_class="Qqqqqqqqqqqq"))
    assert error.message == (
        f"Unknown model class 'Qqqqqqqqqqqq': transformers {transformers.__version__} has no "
        "model class of that name."
    )
    assert error.hint == tail  # nothing close: no "Did you mean"
    error = _error(lambda: ModelSpec("m", model_class="AutoModelForMaskedLMM"))
    guesses = error.hint.removesuffix("? " + tail).removeprefix("Did you mean ").split(", ")
    assert len(guesses) == 3 and guesses[0] == "AutoModelForMaskedLM"
    assert all(hasattr(transformers, g) for g in guesses)
    # A typo in the fifth letter still finds the family by its first four.
    error = _error(lambda: ModelSpec("m", model_class="BertNodel"))
    assert "BertModel" in error.hint


def test_a_credential_in_pipeline_kwargs_is_refused_too():
    error = _error(lambda: ModelSpec("m", task="fill-mask", pipeline_kwargs={"api_key": "k"}))
    assert error.field == "pipeline_kwargs"
    assert error.message.startswith("ModelSpec.pipeline_kwargs['api_key'] holds a credential.")


def test_a_bad_token_env_error_names_its_field():
    assert _error(lambda: ModelSpec("m", model_class="AutoModel", token_env="1x")).field == (
        "token_env"
    )
