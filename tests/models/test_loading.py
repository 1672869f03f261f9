import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from conftest import expected_label
from tether import (
    DeviceUnavailableError,
    ModelLoadError,
    ModelSpec,
    TetherError,
    TokenizerError,
    UnsafeWeightsError,
    UntrustedCustomCodeError,
    WeightMismatchError,
    inspect,
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
    assert info.value.missing_keys == ["classifier.bias", "classifier.weight"]
    assert info.value.unexpected_keys == []
    assert info.value.model_class == "BertForSequenceClassification"
    assert info.value.source == "minilm"


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


def test_a_model_without_a_tokenizer_loads_for_tensors_and_text_tasks_refuse(tiny, tmp_path):
    """Before, load() refused it: tensor inputs worked only through an unrelated tokenizer."""
    from tether.inference.engine import Engine

    target = tmp_path / "no-tokenizer"
    target.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny["bert"] / name, target / name)
    loaded = load(ModelSpec(str(target), model_class="AutoModel"))
    assert loaded.tokenizer is None and loaded.processor is None
    ids = torch.tensor([2, 7, 9, 3])
    [outcome] = Engine(loaded, "tensor").predict([ids])
    with torch.inference_mode():
        expected = loaded.model(input_ids=ids.unsqueeze(0)).last_hidden_state[0]
    assert torch.equal(torch.as_tensor(outcome.inference["last_hidden_state"]), expected)
    with pytest.raises(TokenizerError, match="has no tokenizer files") as info:
        Engine(loaded, "embed")
    assert "'tensor' task" in info.value.hint
    with pytest.raises(TokenizerError, match="No usable tokenizer"):
        load(ModelSpec(str(target), model_class="AutoModel", tokenizer=str(tmp_path)))


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
    with pytest.raises(DeviceUnavailableError, match="no CUDA GPU") as info:
        load(ModelSpec(str(tiny["bert"]), model_class="AutoModel", device="cuda"))
    assert "device='auto'" in info.value.hint
    assert info.value.device == "cuda"
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


def test_guard_errors_carry_their_facts(tiny, tmp_path):
    with pytest.raises(UntrustedCustomCodeError) as untrusted:
        load(ModelSpec(str(tiny["custom"]), model_class="AutoModel"))
    code = tiny["custom"] / "modeling_tiny_custom.py"
    assert untrusted.value.source == str(tiny["custom"])
    assert untrusted.value.files == {
        "modeling_tiny_custom.py": hashlib.sha256(code.read_bytes()).hexdigest()
    }
    with pytest.raises(WeightMismatchError) as unused:
        load(ModelSpec(str(tiny["bert-mlm"]), model_class="AutoModel"))
    assert unused.value.unexpected_keys and all(
        k.startswith("cls.predictions") for k in unused.value.unexpected_keys
    )
    assert unused.value.missing_keys == ["pooler.dense.bias", "pooler.dense.weight"]


def test_errors_keep_message_hint_and_facts_through_pickle(tiny):
    with pytest.raises(WeightMismatchError) as info:
        load(ModelSpec(str(tiny["bert-mlm"]), model_class="AutoModel"))
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is WeightMismatchError
    assert (copy.message, copy.hint) == (info.value.message, info.value.hint)
    assert copy.unexpected_keys == info.value.unexpected_keys


def test_an_undeclared_fact_is_a_bug_caught_at_once():
    with pytest.raises(TypeError, match="no fact"):
        WeightMismatchError("m", "h", missing_key=["typo"])


@pytest.mark.parametrize(
    "name", ["bert", "bert-mlm", "roberta", "xlmr-mlm", "distilbert-cls", "gpt2", "custom"]
)
def test_the_class_inspect_suggests_loads_the_checkpoint_as_is(tiny, name):
    """The hint 'set model_class to the class tether inspect suggests' must be true."""
    report = inspect(str(tiny[name]))
    loaded = load(
        ModelSpec(
            str(tiny[name]),
            model_class=report.suggested_class,
            trust_remote_code=report.needs_custom_code,
        )
    )
    assert not any(loaded.loading_info.get(k) for k in ("missing_keys", "unexpected_keys"))


def test_transformers_load_report_does_not_spill_before_the_error(tiny, capfd):
    with pytest.raises(WeightMismatchError):
        load(ModelSpec(str(tiny["bert-mlm"]), model_class="AutoModel"))
    captured = capfd.readouterr()
    assert "LOAD REPORT" not in captured.err + captured.out


def _with_pickle(tiny, tmp_path, where: str, decoy: str | None = None) -> Path:
    target = tmp_path / "model"
    shutil.copytree(tiny["bert"], target)
    state = AutoModel.from_pretrained(str(target)).state_dict()
    (target / where).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target / where)
    if decoy:
        (target / decoy).parent.mkdir(parents=True, exist_ok=True)
        (target / "model.safetensors").rename(target / decoy)
    return target


@pytest.mark.parametrize(
    ("where", "decoy"),
    [
        ("2_Dense/pytorch_model.bin", None),  # a sentence-transformers module's weights
        ("pytorch_model.bin", "model.onnx"),  # beside a format PyTorch never reads
        ("pytorch_model.bin", "nested/model.safetensors"),  # safetensors, but elsewhere
        ("checkpoint/weights.pt", None),
    ],
)
def test_every_pickle_a_load_could_read_needs_allow_pickle(tiny, tmp_path, where, decoy):
    target = _with_pickle(tiny, tmp_path, where, decoy)
    with pytest.raises(UnsafeWeightsError) as info:
        load(ModelSpec(str(target), model_class="AutoModel"))
    assert info.value.files == [where]


def test_a_pickle_beside_safetensors_in_its_folder_is_not_read(tiny, tmp_path):
    """Loaders take the safetensors file of a folder that has both (tether forces it)."""
    target = _with_pickle(tiny, tmp_path, "pytorch_model.bin")
    loaded = load(ModelSpec(str(target), model_class="AutoModel"))
    reference = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    assert torch.equal(_hidden(loaded), _hidden(reference))


@pytest.mark.parametrize("field", ["num_hidden_layers", "hidden_size", "vocab_size"])
def test_an_absurd_config_is_refused_before_anything_is_built(tiny, tmp_path, monkeypatch, field):
    from transformers import BertModel

    target = Path(shutil.copytree(tiny["bert"], tmp_path / "absurd"))
    config = json.loads((target / "config.json").read_text())
    config[field] = 1_000_000
    (target / "config.json").write_text(json.dumps(config))

    def never(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(BertModel, "from_pretrained", never)
    with pytest.raises(WeightMismatchError, match="describes a model of at least") as info:
        load(ModelSpec(str(target), model_class="BertModel"))
    assert info.value.source == str(target)


def test_implied_parameters_is_a_lower_bound_for_every_tiny_model(tiny):
    from tether.models.loading import implied_parameters

    for name in ("bert", "bert-mlm", "roberta", "xlmr-mlm", "distilbert-cls", "gpt2", "custom"):
        config = json.loads((tiny[name] / "config.json").read_text())
        implied = implied_parameters(config)
        assert implied is not None, name
        assert implied <= inspect(str(tiny[name])).num_parameters, name


def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "tiny":
        path.write_bytes(data[:5])
    elif how == "huge-length":
        path.write_bytes((10**12).to_bytes(8, "little") + data[8:])
    elif how == "not-json":
        length = int.from_bytes(data[:8], "little")
        path.write_bytes(data[:8] + b"\xff" * length + data[8 + length :])


@pytest.mark.parametrize("how", ["truncated", "tiny", "huge-length", "not-json"])
def test_a_malformed_safetensors_file_is_one_clear_error(tiny, tmp_path, how):
    from click.testing import CliRunner

    from tether import InputError
    from tether.cli.main import cli

    target = Path(shutil.copytree(tiny["bert"], tmp_path / how))
    _corrupt(target / "model.safetensors", how)
    with pytest.raises(InputError, match="not a valid safetensors file") as info:
        load(ModelSpec(str(target), model_class="AutoModel"))
    assert info.value.path == str(target / "model.safetensors")
    result = CliRunner().invoke(cli, ["load", str(target)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_a_pickle_torch_refuses_is_one_clear_error_and_never_runs(tiny, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    target = Path(shutil.copytree(tiny["bert"], tmp_path / "evil"))
    (target / "model.safetensors").unlink()
    with (target / "pytorch_model.bin").open("wb") as handle:
        pickle.dump({"weight": Exploit()}, handle)
    with pytest.raises(UnsafeWeightsError):
        load(ModelSpec(str(target), model_class="AutoModel"))
    with pytest.raises(ModelLoadError) as info:
        load(ModelSpec(str(target), model_class="AutoModel", allow_pickle=True))
    assert info.value.source == str(target)
    assert not marker.exists()


def test_a_revision_for_a_local_directory_is_refused_not_ignored(tiny):
    from tether import SpecError

    with pytest.raises(SpecError, match="has no revisions") as info:
        load(ModelSpec(str(tiny["bert"]), model_class="AutoModel", revision="v2"))
    assert info.value.field == "revision"


# -- the loader's guards, each on its own (issue 16) ----------------------------------------

from types import SimpleNamespace  # noqa: E402

from tether.models.loading import (  # noqa: E402
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


def _report(readable):
    return SimpleNamespace(readable_pickle_files=[SimpleNamespace(path=p) for p in readable])


def test_pickle_guard_fires_for_every_readable_pickle_unless_allowed():
    with pytest.raises(UnsafeWeightsError, match=r"loading would unpickle \(a\.bin, b\.pt\)"):
        check_weight_files(_spec(), _report(["a.bin", "b.pt"]))
    assert check_weight_files(_spec(allow_pickle=True), _report(["a.bin"])) is None
    assert check_weight_files(_spec(), _report([])) is None


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
        load_kwargs={"attn_implementation": "eager", "local_files_only": True},
    )
    load(spec)
    assert seen["attn_implementation"] == "eager" and seen["use_safetensors"] is True
    assert seen["dtype"] == torch.bfloat16 and seen["trust_remote_code"] is False
    assert "token" not in seen and "local_files_only" not in seen


def test_transformers_load_failures_become_tether_errors(tiny):
    with pytest.raises(TetherError, match=r"could not load .* as AutoModelForSeq2SeqLM") as info:
        load(ModelSpec(str(tiny["bert"]), model_class="AutoModelForSeq2SeqLM"))
    assert "tether inspect" in info.value.hint


# -- mutants that survived a mutation run (.ci/mutation loading) ---------------------------


def test_a_weight_mismatch_error_lists_every_problem_and_carries_the_keys():
    info = {"missing_keys": ["h.w"], "mismatched_keys": ["e.w"], "unexpected_keys": ["o.w"]}
    with pytest.raises(WeightMismatchError) as error:
        check_loading_info(_spec(), torch.nn.Linear(1, 1), info)
    assert error.value.message == (
        "Loading 'org/m' as Linear does not use the checkpoint as is. Weights newly "
        "initialised (missing from the checkpoint): 1 key(s): h.w; shape-mismatched: 1 key(s): "
        "e.w; unused (in the checkpoint but not in Linear): 1 key(s): o.w."
    )
    assert error.value.hint == (
        "If this is intended, set allow_new_weights=True (adding a head to fine-tune) or "
        "allow_unused_weights=True (dropping a head) in the spec; otherwise set model_class "
        "to the class `tether inspect` suggests (the checkpoint's own)."
    )
    facts = (error.value.missing_keys, error.value.mismatched_keys, error.value.unexpected_keys)
    assert facts == (["h.w"], ["e.w"], ["o.w"])
    assert (error.value.source, error.value.model_class) == ("org/m", "Linear")


def test_key_lists_of_exactly_the_limit_and_one_over_it():
    def message(count):
        keys = [f"k{i}" for i in range(count)]
        with pytest.raises(WeightMismatchError) as error:
            check_loading_info(_spec(), torch.nn.Linear(1, 1), {"missing_keys": keys})
        return error.value.message

    assert ", ".join(f"k{i}" for i in range(12)) + "." in message(12)  # all shown, no "more"
    assert "k11, ... (+1 more)." in message(13)


def test_a_tokenizer_too_big_for_the_model_gets_its_remedy(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    rows = loaded.model.get_input_embeddings().num_embeddings
    with pytest.raises(TokenizerError) as error:
        check_tokenizer_fits([0] * (rows + 1), loaded.model)
    assert error.value.hint == (
        "Use the tokenizer the model was trained with, or call "
        "model.resize_token_embeddings(len(tokenizer)) and fine-tune before saving."
    )


def test_implied_parameters_reads_every_size_name_and_skips_non_positive_ones():
    from tether.models.loading import implied_parameters

    # One layer of width 4, no vocabulary: attention 4 x 4 x 4 = 64, MLP 2 x 4 x 16 = 128.
    assert implied_parameters({"hidden_size": 4, "num_hidden_layers": 1}) == 192
    assert implied_parameters({"d_model": 4, "num_layers": 1}) == 192  # T5/BART names
    assert implied_parameters({"hidden_size": 0, "n_embd": 4, "n_layer": 1}) == 192
    assert implied_parameters({"hidden_size": 4, "num_hidden_layers": 0}) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_cuda_device_without_cuda_names_the_device_and_the_way_out():
    from tether.errors import DeviceUnavailableError

    with pytest.raises(DeviceUnavailableError) as error:
        resolve_device("cuda:1")
    assert error.value.message == (
        "The spec asks for device 'cuda:1' but this machine has no CUDA GPU."
    )
    assert error.value.hint == (
        "Set device='auto' to use a GPU only where there is one, or device='cpu'."
    )
    assert error.value.device == "cuda:1"


def _vision_model(image_size, nested=False):
    config = SimpleNamespace(image_size=image_size)
    return SimpleNamespace(config=SimpleNamespace(vision_config=config) if nested else config)


def test_a_processor_must_make_images_of_the_size_the_model_expects():
    from transformers import CLIPImageProcessor, ViTImageProcessor

    from tether.models.loading import check_processor_fits

    vit32 = ViTImageProcessor(size={"height": 32, "width": 32})
    vit224 = ViTImageProcessor(size={"height": 224, "width": 224})
    assert check_processor_fits(_spec(), vit32, _vision_model(32)) is None
    with pytest.raises(TokenizerError) as error:
        check_processor_fits(_spec(), vit224, _vision_model(32))
    assert error.value.message == (
        "The preprocessor of 'org/m' makes 224-pixel images but the model expects 32-pixel "
        "ones (config image_size)."
    )
    assert error.value.hint == (
        "Use the processor the model was trained with (processor=...), or fix its size."
    )
    assert error.value.source == "org/m"
    # A multimodal processor's image processor is the one checked; a CLIP-style vision
    # config nests image_size.
    multimodal = SimpleNamespace(image_processor=vit224)
    with pytest.raises(TokenizerError, match="makes 224-pixel"):
        check_processor_fits(_spec(), multimodal, _vision_model(32, nested=True))
    # The crop, when there is one, is what the model sees; else the shortest edge.
    clip = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 32, "width": 32})
    assert check_processor_fits(_spec(), clip, _vision_model(32)) is None
    with pytest.raises(TokenizerError, match="makes 64-pixel"):
        check_processor_fits(
            _spec(), SimpleNamespace(size={"shortest_edge": 64}), _vision_model(32)
        )
    # Nothing to compare: no size, or a config without an integer image_size.
    assert check_processor_fits(_spec(), SimpleNamespace(), _vision_model(32)) is None
    assert check_processor_fits(_spec(), vit224, _vision_model(None)) is None
    assert check_processor_fits(_spec(), vit224, SimpleNamespace()) is None


@pytest.mark.parametrize(
    "config, expected",
    [
        # vocab 50 x 8 + 2 layers x (attention 2*64 + 2*8*(8*2//4) + MLP 2*8*20*3)
        (
            {
                "hidden_size": 8,
                "num_hidden_layers": 2,
                "intermediate_size": 20,
                "num_local_experts": 3,
                "vocab_size": 50,
                "num_key_value_heads": 2,
                "num_attention_heads": 4,
            },
            50 * 8 + 2 * (2 * 64 + 2 * 8 * 4 + 2 * 8 * 20 * 3),
        ),
        # GPT-2 names (n_head counts heads for the key/value share).
        (
            {"n_embd": 8, "n_layer": 2, "n_inner": 20, "n_head": 4, "num_key_value_heads": 2},
            2 * (2 * 64 + 2 * 8 * 4 + 2 * 8 * 20),
        ),
        ({"dim": 8, "n_layers": 1, "ffn_dim": 10, "num_experts": 2}, 4 * 64 + 2 * 8 * 10 * 2),
        ({"hidden_size": 8, "num_hidden_layers": 1, "hidden_dim": 10}, 4 * 64 + 2 * 8 * 10),
        # 3 of 5 heads' worth of key/value width: 8 x 3 // 5 = 4 columns, whole numbers.
        (
            {
                "hidden_size": 8,
                "num_hidden_layers": 1,
                "num_key_value_heads": 3,
                "num_attention_heads": 5,
            },
            2 * 64 + 2 * 8 * 4 + 8 * 64,
        ),
        # Key/value heads without a head count: full attention.
        ({"hidden_size": 8, "num_hidden_layers": 1, "num_key_value_heads": 2}, 4 * 64 + 8 * 64),
    ],
    ids=["llama-moe", "gpt2", "distilbert", "hidden-dim", "kv-uneven", "kv-only"],
)
def test_implied_parameters_counts_embeddings_attention_and_mlp(config, expected):
    from tether.models.loading import implied_parameters

    assert implied_parameters(config) == expected


# -- the loader's guards: full texts, the size boundary, the device choice (issue 16) -----
#
# The second mutation pass of `models/loading.py` left mutants that changed a guard's
# message, hint or `source` fact (tests matched them in part), moved the config-size
# boundary by one, or picked another device in `auto`. Each test below fails on them.

from tether.models.loading import check_config_size, check_custom_code  # noqa: E402


def _code_report(files, auto_map):
    return SimpleNamespace(
        needs_custom_code=bool(auto_map),
        model_type="bert",
        auto_map=auto_map,
        custom_code_files=[SimpleNamespace(path=p, sha256=h) for p, h in files],
    )


def test_custom_code_refusal_lists_each_file_with_its_hash():
    auto_map = {"AutoModel": "modeling_x.XModel"}
    report = _code_report([("modeling_x.py", "ab12"), ("util.py", "cd34")], auto_map)
    with pytest.raises(UntrustedCustomCodeError) as error:
        check_custom_code(_spec(), report)
    assert error.value.message == (
        "'org/m' needs its own model code (config.json has auto_map: "
        "{'AutoModel': 'modeling_x.XModel'}), but trust_remote_code is off. Without it "
        "transformers would silently build the built-in 'bert' class instead, with different "
        "outputs.\n  Custom code files:\n    modeling_x.py  sha256:ab12\n    util.py  sha256:cd34"
    )
    assert error.value.hint == "Review those files, then set trust_remote_code=True in the spec."
    assert error.value.source == "org/m"
    assert error.value.files == {"modeling_x.py": "ab12", "util.py": "cd34"}
    assert check_custom_code(_spec(trust_remote_code=True), report) is None
    assert check_custom_code(_spec(), _code_report([], {})) is None


def test_custom_code_in_another_repo_names_that_repo():
    auto_map = {"AutoModel": "org/code--modeling.M", "AutoConfig": "org/code--conf.C"}
    with pytest.raises(UntrustedCustomCodeError) as error:
        check_custom_code(_spec(), _code_report([], auto_map))
    assert error.value.message.endswith(
        "Custom code files:\n    (code lives in another repo: org/code--modeling.M, "
        "org/code--conf.C)"
    )
    assert error.value.files == {}


def test_pickle_refusal_text_and_facts_in_full():
    with pytest.raises(UnsafeWeightsError) as error:
        check_weight_files(_spec(), _report(["a.bin", "sub/b.pt"]))
    assert error.value.message == (
        "'org/m' has pickle weight files that loading would unpickle (a.bin, sub/b.pt), "
        "with no safetensors file beside them; unpickling can run arbitrary code."
    )
    assert error.value.hint == (
        "Prefer a safetensors copy of the model (`tether save` writes one), or set "
        "allow_pickle=True if you trust the source."
    )
    assert error.value.source == "org/m"
    assert error.value.files == ["a.bin", "sub/b.pt"]


def _sized(tmp_path, vocab):
    # hidden 1, one layer: attention 2 + 2, MLP 2 x 1 x 4 = 8, so implied = vocab + 12.
    config = {"hidden_size": 1, "num_hidden_layers": 1, "vocab_size": vocab}
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_config_size_boundary_is_four_times_the_weights_plus_a_million(tmp_path):
    """A 1-parameter checkpoint may have a config implying 4 x 1 + 1,000,000 parameters;
    one more is refused, with the exact figures and remedy."""
    weights = SimpleNamespace(num_parameters=1)
    path = _sized(tmp_path, 1_000_004 - 12)
    assert check_config_size(_spec(), weights, path) is None
    path = _sized(tmp_path, 1_000_005 - 12)
    with pytest.raises(WeightMismatchError) as error:
        check_config_size(_spec(), weights, path)
    assert error.value.message == (
        "'org/m': config.json describes a model of at least 1,000,005 parameters, but its "
        "weight files hold 1. The config does not describe these weights (look at "
        "num_hidden_layers, hidden_size, intermediate_size, vocab_size)."
    )
    assert error.value.hint == (
        "Use the config.json that was saved with these weights (save_pretrained writes both)."
    )
    assert error.value.source == "org/m"


def test_config_size_is_not_checked_without_a_weight_count_or_a_config(tmp_path):
    huge = _sized(tmp_path, 10**12)
    assert check_config_size(_spec(), SimpleNamespace(num_parameters=None), huge) is None
    assert check_config_size(_spec(), SimpleNamespace(num_parameters=0), huge) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_config_size(_spec(), SimpleNamespace(num_parameters=1), empty) is None
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 10**12}))
    assert check_config_size(_spec(), SimpleNamespace(num_parameters=1), tmp_path) is None


# `auto` on a machine with a GPU cannot run here (CI has none), so these tests make the
# runtime's availability checks answer yes: what is under test is the order of choice
# (CUDA, then MPS, then CPU), not the accelerator.


def _accelerators(monkeypatch, cuda, mps):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    "cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _accelerators(monkeypatch, cuda, mps)
    assert resolve_device("auto") == torch.device(expected)


def test_a_cuda_device_is_taken_as_asked_where_cuda_exists(monkeypatch):
    _accelerators(monkeypatch, True, False)
    assert resolve_device("cuda:1") == torch.device("cuda:1")


def test_auto_without_an_mps_backend_falls_back_to_cpu(monkeypatch):
    _accelerators(monkeypatch, False, True)
    monkeypatch.setattr(torch.backends, "mps", None)  # a torch built without it
    assert resolve_device("auto") == torch.device("cpu")
