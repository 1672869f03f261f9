import numpy as np
import pytest
import torch

from conftest import expected_label
from tether import ModelSpec, TetherError, load
from tether.inference.engine import Engine
from tether.inference.results import Prediction, RecordError

TEXTS = [
    "hello world, the quick fox",
    "tether keeps the model you run exactly the model you tested",
    "short",
    "good great excellent happy bad awful terrible sad " * 3,
]


@pytest.fixture(scope="module")
def minilm():
    return load(ModelSpec("minilm", model_class="AutoModel"))


def test_embeddings_equal_sentence_transformers_encode(minilm):
    from sentence_transformers import SentenceTransformer

    texts = TEXTS * 5 + ["A " + "long text about embeddings " * 80]
    ours = np.stack([o.inference for o in Engine(minilm, "embed", max_tokens=512).predict(texts)])
    reference = SentenceTransformer(str(minilm.path), device="cpu").encode(texts, batch_size=7)
    assert ours.shape == reference.shape == (len(texts), 384)
    assert np.abs(ours - reference).max() <= 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)  # Normalize module


def test_sentence_transformer_class_gives_the_same_vectors(minilm):
    st = load(ModelSpec("minilm", model_class="SentenceTransformer"))
    a = np.stack([o.inference for o in Engine(st, "embed").predict(TEXTS)])
    b = np.stack([o.inference for o in Engine(minilm, "embed").predict(TEXTS)])
    assert np.abs(a - b).max() <= 1e-5


def test_embed_on_a_masked_lm_head_uses_hidden_states_not_logits(tiny):
    mlm = load(ModelSpec(str(tiny["xlmr-mlm"]), model_class="AutoModelForMaskedLM"))
    outcomes = Engine(mlm, "embed").predict(TEXTS)
    vector = outcomes[0].inference
    assert vector.shape == (32,)  # hidden size, not the vocabulary size
    base = mlm.model.base_model
    batch = mlm.tokenizer(TEXTS[:1], return_tensors="pt")
    with torch.inference_mode():
        expected = base(**batch).last_hidden_state.mean(dim=1)[0].numpy()
    assert np.abs(vector - expected).max() <= 1e-6


def test_results_do_not_depend_on_batching(tiny):
    loaded = load(ModelSpec(str(tiny["roberta"]), model_class="AutoModel"))
    texts = TEXTS * 3
    one = [o.inference for o in Engine(loaded, "embed", max_rows=1).predict(texts)]
    many = [o.inference for o in Engine(loaded, "embed", max_tokens=4096).predict(texts)]
    assert np.abs(np.stack(one) - np.stack(many)).max() <= 1e-5


def test_output_order_matches_input_order(minilm):
    texts = [f"text number {i} " + "word " * (i * 7 % 23) for i in range(40)]
    outcomes = Engine(minilm, "embed", max_tokens=300).predict(texts)
    assert [o.example for o in outcomes] == texts
    assert all(o.model_id == "minilm" for o in outcomes)


def test_bad_records_become_error_rows_and_nothing_is_lost(minilm):
    texts = ["fine", "", "   ", None, 42, ["a list"], "also fine", "x " * 2000]
    engine = Engine(minilm, "embed")
    outcomes = engine.predict(texts)
    assert len(outcomes) == len(texts)
    kinds = [o.kind if isinstance(o, RecordError) else "ok" for o in outcomes]
    assert kinds == ["ok", "empty", "empty", "not-text", "not-text", "not-text", "ok", "ok"]
    assert engine.stats["truncated"] == 1
    assert engine.stats["errors"] == 5


def test_stream_matches_predict_and_keeps_order(minilm):
    texts = [f"sentence {i} " + "x" * (i % 17) for i in range(50)] + [""]
    engine = Engine(minilm, "embed")
    streamed = list(engine.stream(iter(texts), chunk_size=8))
    direct = engine.predict(texts)
    assert [o.example for o in streamed] == texts
    assert isinstance(streamed[-1], RecordError)
    a = np.stack([o.inference for o in streamed[:-1]])
    b = np.stack([o.inference for o in direct[:-1]])
    assert np.abs(a - b).max() <= 1e-5


def test_classify_returns_labels_and_scores(tiny):
    loaded = load(
        ModelSpec(str(tiny["distilbert-cls"]), model_class="AutoModelForSequenceClassification")
    )
    outcomes = Engine(loaded, "classify").predict(TEXTS)
    for outcome in outcomes:
        result = outcome.inference
        assert result["label"] == expected_label(tiny["distilbert-cls"], outcome.example)
        assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-5)
        assert result["score"] == max(result["scores"].values())
    pipe = load(ModelSpec(str(tiny["distilbert-cls"]), task="text-classification")).pipeline
    assert pipe(TEXTS[0])[0]["score"] == pytest.approx(outcomes[0].inference["score"], abs=1e-5)


def test_classify_refuses_a_model_without_a_classification_head(tiny):
    loaded = load(ModelSpec(str(tiny["bert-mlm"]), model_class="AutoModelForMaskedLM"))
    with pytest.raises(TetherError, match="sequence-classification head"):
        Engine(loaded, "classify")


def test_fill_mask_matches_the_transformers_pipeline(tiny):
    loaded = load(ModelSpec(str(tiny["bert-mlm"]), model_class="AutoModelForMaskedLM"))
    texts = ["the quick [MASK] fox", "hello [MASK] world [MASK]", "no mask here"]
    outcomes = Engine(loaded, "fill-mask", top_k=3).predict(texts)
    assert isinstance(outcomes[2], RecordError) and outcomes[2].kind == "no-mask"
    assert len(outcomes[1].inference) == 2  # one candidate list per mask
    from transformers import pipeline

    reference = pipeline("fill-mask", model=loaded.model, tokenizer=loaded.tokenizer, top_k=3)
    expected = reference(texts[0])
    got = outcomes[0].inference[0]
    assert [c["token"] for c in got] == [c["token"] for c in expected]
    assert [c["score"] for c in got] == pytest.approx([c["score"] for c in expected], abs=1e-5)


def test_pipeline_task_runs_any_pipeline(tiny):
    loaded = load(ModelSpec(str(tiny["bert-mlm"]), task="fill-mask"))
    outcomes = Engine(loaded, "pipeline", top_k=2).predict(["the quick [MASK] fox", 3, ""])
    assert len(outcomes[0].inference) == 2
    assert [type(o) for o in outcomes[1:]] == [RecordError, RecordError]


def test_pipeline_task_needs_a_task_spec(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    with pytest.raises(TetherError, match="task set"):
        Engine(loaded, "pipeline")


def test_tensor_task_pads_variable_lengths_and_splits_outputs(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    ids = [loaded.tokenizer(t, return_tensors="pt")["input_ids"][0] for t in TEXTS]
    examples = [ids[0], ids[1].numpy(), {"input_ids": ids[2]}, "not a tensor"]
    outcomes = Engine(loaded, "tensor").predict(examples)
    assert isinstance(outcomes[3], RecordError) and outcomes[3].kind == "not-tensor"
    for example_ids, outcome in zip(ids[:3], outcomes[:3], strict=False):
        with torch.inference_mode():
            alone = loaded.model(input_ids=example_ids[None]).last_hidden_state[0]
        got = torch.as_tensor(outcome.inference["last_hidden_state"])
        assert got.shape == alone.shape
        assert (got - alone).abs().max().item() <= 1e-5
    assert isinstance(outcomes[1].inference["last_hidden_state"], np.ndarray)


def test_tensor_task_returns_tuple_outputs_per_example(tiny):
    loaded = load(
        ModelSpec(
            str(tiny["bert"]), model_class="AutoModel", load_kwargs={"output_hidden_states": True}
        )
    )
    ids = [loaded.tokenizer(t, return_tensors="pt")["input_ids"][0] for t in TEXTS[:2]]
    outcomes = Engine(loaded, "tensor").predict(ids)
    hidden = outcomes[0].inference["hidden_states"]
    assert isinstance(hidden, tuple) and len(hidden) == 3  # embeddings + 2 layers
    assert hidden[-1].shape == (len(ids[0]), 32)


def test_unknown_task_and_options_are_clear_errors(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    with pytest.raises(TetherError, match="Unknown task"):
        Engine(loaded, "summarise")
    with pytest.raises(TetherError, match="unknown option"):
        Engine(loaded, "embed", top_k=3)


def test_predictions_are_shaped_like_beam_prediction_results(minilm):
    [outcome] = Engine(minilm, "embed").predict(["hi"])
    assert isinstance(outcome, Prediction)
    assert outcome._fields == ("example", "inference", "model_id")


@pytest.mark.parametrize("limits", [{"max_tokens": 0}, {"max_rows": -5}])
def test_non_positive_limits_are_a_spec_error_not_a_value_error_later(tiny, limits):
    from tether import SpecError

    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    with pytest.raises(SpecError) as info:
        Engine(loaded, "embed", **limits)
    [(name, value)] = limits.items()
    assert info.value.field == name
    assert info.value.message == f"{name} must be a positive number, got {value}."
    assert info.value.hint == f"Pass {name}=None for the device's default, or a number >= 1."


def _run_alone(loaded, example):
    """The model's outputs for one example, run by itself with plain torch."""
    inputs = {k: torch.as_tensor(v).unsqueeze(0) for k, v in example.items()}
    with torch.inference_mode():
        return loaded.model(**inputs)


def test_dict_inputs_whose_fields_differ_in_length_match_one_at_a_time_runs(tiny):
    """VisualBERT: 11 text tokens + 3 regions was padded to the first key's length on every
    key and trimmed on that axis only, giving (22, 32) rows 0.018 away from the truth."""
    loaded = load(ModelSpec(str(tiny["visualbert"]), model_class="AutoModel"))
    generator = torch.Generator().manual_seed(0)
    examples = []
    for text_len, regions in [(11, 3), (7, 3), (7, 5), (11, 3), (4, 2)]:
        examples.append(
            {
                "input_ids": torch.randint(5, 40, (text_len,), generator=generator),
                "visual_embeds": torch.randn(regions, 16, generator=generator),
            }
        )
    outcomes = Engine(loaded, "tensor").predict(examples)
    for example, outcome in zip(examples, outcomes, strict=True):
        expected = _run_alone(loaded, example).last_hidden_state[0]
        got = torch.as_tensor(outcome.inference["last_hidden_state"])
        assert got.shape == expected.shape  # (text + regions, hidden)
        assert (got - expected).abs().max() <= 1e-6


def test_a_pooled_output_is_not_trimmed_when_the_padded_width_equals_the_hidden_size(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    hidden = loaded.model.config.hidden_size  # 32: pad a batch to exactly this width
    ids = [
        torch.randint(5, 40, (n,), generator=torch.Generator().manual_seed(n)) for n in (hidden, 9)
    ]
    outcomes = Engine(loaded, "tensor").predict(ids)
    for example, outcome in zip(ids, outcomes, strict=True):
        expected = _run_alone(loaded, {"input_ids": example})
        pooled = torch.as_tensor(outcome.inference["pooler_output"])
        assert pooled.shape == (hidden,)
        assert (pooled - expected.pooler_output[0]).abs().max() <= 1e-6
        hidden_states = torch.as_tensor(outcome.inference["last_hidden_state"])
        assert hidden_states.shape == (len(example), hidden)


def _doubled_hidden_states(model, inputs, device, inference_args):
    output = model(**inputs)
    output.last_hidden_state = output.last_hidden_state * inference_args.get("scale", 2.0)
    return output


def test_inference_fn_replaces_the_forward_pass_for_every_batch(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel", pooling="mean"))
    plain = [o.inference for o in Engine(loaded, "embed").predict(TEXTS)]
    hooked = Engine(
        loaded, "embed", inference_fn=_doubled_hidden_states, inference_args={"scale": 3.0}
    ).predict(TEXTS)
    for a, b in zip(plain, hooked, strict=True):
        assert np.allclose(b.inference, 3.0 * a, atol=1e-5)


def test_a_beam_handler_carries_inference_fn_to_the_worker(tiny):
    import pickle

    from tether.beam import TextEmbeddingHandler

    spec = ModelSpec(str(tiny["bert"]), model_class="AutoModel", pooling="mean")
    handler = pickle.loads(
        pickle.dumps(TextEmbeddingHandler(spec, inference_fn=_doubled_hidden_states))
    )
    model = handler.load_model()
    hooked = [r.inference for r in handler.run_inference(TEXTS[:2], model)]
    plain = [o.inference for o in Engine(load(spec), "embed").predict(TEXTS[:2])]
    assert np.allclose(hooked[0], 2.0 * plain[0], atol=1e-5)


# -- order and identity, budgets, fault isolation (issue 16) ---------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tether.inference.batching import BUDGETS  # noqa: E402
from tether.inference.tasks import Encoded, RecordProblem, Task  # noqa: E402


class _ScriptedTask(Task):
    """A task whose answers are a function of the text, so that a prediction carries
    its own identity: ``inference == text.upper()``. Records are refused, fail to
    encode or crash the model according to their prefix, which makes every fault path
    of the engine reachable without a real broken model."""

    name = "scripted"

    def __init__(self, loaded):
        super().__init__(loaded)
        self.encode_calls: list[list[str]] = []
        self.forward_calls: list[list[str]] = []

    def check(self, example):
        if not isinstance(example, str):
            raise RecordProblem("not text", "not-text")
        if example.startswith("refuse"):
            raise RecordProblem("refused by check", "refused")

    def encode(self, examples):
        self.encode_calls.append(list(examples))
        if any(e.startswith("undecodable") for e in examples):
            raise UnicodeError("cannot encode this one")
        if any(e.startswith("overlong") for e in examples):
            raise RecordProblem("too long to encode", "too-long")
        return [Encoded(len(e), e, truncated=e.endswith("+")) for e in examples]

    def forward(self, batch):
        texts = [item.data for item in batch]
        self.forward_calls.append(texts)
        if any(t.startswith("crash") for t in texts):
            raise RuntimeError("kernel exploded")
        if any(t.startswith("problem") for t in texts):
            raise RecordProblem("model refuses this one", "too-odd")
        return [t.upper() for t in texts]


@pytest.fixture(scope="module")
def tiny_bert(tiny):
    return load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))


def _scripted(loaded, **kwargs):
    engine = Engine(loaded, "embed", **kwargs)
    engine.task = _ScriptedTask(loaded)
    return engine


def _assert_identity(outcomes, examples):
    """Each outcome sits at its input's position and carries that input's own answer."""
    assert len(outcomes) == len(examples)
    for outcome, example in zip(outcomes, examples, strict=True):
        assert outcome.example is example
        if isinstance(outcome, Prediction):
            assert outcome.inference == example.upper()


def test_predictions_keep_their_own_example_when_error_rows_are_mixed_in(tiny_bert):
    # Error rows before longer texts: an encoded index and an input position differ.
    examples = [None, "bb", "refuse me", "a", 7, "dddd", "ccc", "refuse", "eeeee"]
    outcomes = _scripted(tiny_bert).predict(examples)
    _assert_identity(outcomes, examples)
    kinds = [o.kind if isinstance(o, RecordError) else "ok" for o in outcomes]
    assert kinds == ["not-text", "ok", "refused", "ok", "not-text", "ok", "ok", "refused", "ok"]


def test_real_model_predictions_keep_their_own_example_among_error_rows(tiny_bert):
    texts = ["", "a much longer text than the others, with many words", None, "short one"]
    outcomes = Engine(tiny_bert, "embed").predict(texts)
    alone = {t: Engine(tiny_bert, "embed").predict([t])[0].inference for t in texts[1::2]}
    for text, outcome in zip(texts, outcomes, strict=True):
        assert outcome.example is text
        if text in alone:
            assert np.abs(outcome.inference - alone[text]).max() <= 1e-5


def test_token_budget_and_row_cap_reach_the_planner_in_their_places(tiny_bert):
    engine = _scripted(tiny_bert, max_tokens=40, max_rows=3)
    engine.predict([f"{i}" + "x" * 9 for i in range(8)])  # distinct: repeats run once
    # 40 tokens fit 4 rows of 10, the row cap allows 3: batches of 3, 3 and 2.
    assert [len(b) for b in engine.task.forward_calls] == [3, 3, 2]
    engine = _scripted(tiny_bert, max_tokens=25, max_rows=30)
    engine.predict([f"{i}" + "x" * 9 for i in range(5)])
    assert [len(b) for b in engine.task.forward_calls] == [2, 2, 1]  # 25 tokens: 2 rows


def test_default_budget_follows_the_device(tiny_bert):
    import dataclasses

    cpu = Engine(tiny_bert, "embed")
    assert (cpu.max_tokens, cpu.max_rows) == BUDGETS["cpu"]
    on_gpu = dataclasses.replace(tiny_bert, device=torch.device("cuda", 0))
    gpu = Engine(on_gpu, "embed")
    assert (gpu.max_tokens, gpu.max_rows) == BUDGETS["gpu"]
    assert BUDGETS["gpu"][0] > BUDGETS["cpu"][0] and BUDGETS["gpu"][1] > BUDGETS["cpu"][1]
    explicit = Engine(on_gpu, "embed", max_tokens=100, max_rows=7)
    assert (explicit.max_tokens, explicit.max_rows) == (100, 7)


def test_a_record_that_fails_to_encode_is_retried_alone_and_the_rest_survive(tiny_bert):
    engine = _scripted(tiny_bert)
    examples = ["ok one", "undecodable thing", "ok two", None, "ok three"]
    outcomes = engine.predict(examples)
    _assert_identity(outcomes, examples)
    bad = outcomes[1]
    assert isinstance(bad, RecordError) and bad.kind == "bad-input"
    assert "could not encode: UnicodeError: cannot encode this one" in bad.reason
    # One batch call for the chunk, then one call per checked record.
    assert engine.task.encode_calls[0] == ["ok one", "undecodable thing", "ok two", "ok three"]
    assert engine.task.encode_calls[1:] == [[e] for e in engine.task.encode_calls[0]]
    types = [Prediction, RecordError, Prediction, RecordError, Prediction]
    assert [type(o) for o in outcomes] == types
    assert engine.stats["errors"] == 2 and engine.stats["records"] == 5


def test_a_failing_forward_pass_is_split_down_to_the_bad_item(tiny_bert):
    engine = _scripted(tiny_bert, max_tokens=10_000, max_rows=100)
    examples = ["good a", "crash here", "good bb", "problem item", "good ccc"]
    outcomes = engine.predict(examples)
    _assert_identity(outcomes, examples)
    crash, problem = outcomes[1], outcomes[3]
    assert isinstance(crash, RecordError) and crash.kind == "model-error"
    assert crash.reason == "model failed: RuntimeError: kernel exploded"
    assert isinstance(problem, RecordError) and problem.kind == "too-odd"
    assert problem.reason == "model refuses this one"
    calls = engine.task.forward_calls
    assert len(calls[0]) == 5  # the whole batch first
    assert all(len(c) == 1 for c in calls[1:])  # then one item at a time
    assert sorted(c[0] for c in calls[1:]) == sorted(examples)
    assert engine.stats["errors"] == 2


def test_stats_count_records_tokens_truncation_and_errors(tiny_bert):
    engine = _scripted(tiny_bert)
    engine.predict(["abc", "de+", None, "crash"])
    engine.predict(["fghi+"])
    assert engine.stats == {"records": 5, "tokens": 3 + 3 + 5 + 5, "truncated": 2, "errors": 2}


def test_stream_keeps_order_and_identity_across_chunks_with_errors(tiny_bert):
    engine = _scripted(tiny_bert, max_tokens=12, max_rows=3)
    examples = [None if i % 5 == 0 else "w" * (i % 7 + 1) for i in range(23)] + ["crash"]
    streamed = list(engine.stream(iter(examples), chunk_size=4))
    _assert_identity(streamed, examples)
    assert [len(c) for c in engine.stream_chunks([[], ["a"]])] == [0, 1]


_RECORDS = st.one_of(
    st.text(alphabet="abc", min_size=1, max_size=12),
    st.none(),
    st.sampled_from(["refuse", "crash!", "problem?", "undecodable"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    examples=st.lists(_RECORDS, max_size=30),
    max_tokens=st.integers(1, 40),
    max_rows=st.integers(1, 8),
    chunk_size=st.integers(1, 9),
)
def test_order_and_identity_survive_any_mix_of_error_rows(
    tiny_bert, examples, max_tokens, max_rows, chunk_size
):
    engine = _scripted(tiny_bert, max_tokens=max_tokens, max_rows=max_rows)
    _assert_identity(engine.predict(examples), examples)
    _assert_identity(list(engine.stream(examples, chunk_size=chunk_size)), examples)


# -- pooling modes other than mean (issue 16) ---------------------------------------------

from tether.inference.tasks.embed import pool  # noqa: E402


def test_pool_modes_use_only_real_tokens():
    # Two rows of dims 2; row 0 has 3 real tokens, row 1 has 1 real + 2 padding tokens
    # whose values are huge, so any mode that reads padding gives itself away.
    hidden = torch.tensor(
        [
            [[1.0, -2.0], [3.0, 5.0], [-4.0, 0.5]],
            [[2.0, 7.0], [900.0, 900.0], [-900.0, 900.0]],
        ]
    )
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert pool(hidden, mask, "cls").tolist() == [[1.0, -2.0], [2.0, 7.0]]
    assert pool(hidden, mask, "last").tolist() == [[-4.0, 0.5], [2.0, 7.0]]
    assert pool(hidden, mask, "max").tolist() == [[3.0, 5.0], [2.0, 7.0]]
    assert torch.allclose(pool(hidden, mask, "mean"), torch.tensor([[0.0, 3.5 / 3], [2.0, 7.0]]))
    root3 = 3**0.5
    expected = torch.tensor([[0.0, 3.5 / root3], [2.0, 7.0]])
    assert torch.allclose(pool(hidden, mask, "mean_sqrt_len"), expected)


def test_max_pooling_keeps_negative_values_of_real_tokens():
    hidden = torch.tensor([[[-5.0], [-3.0], [0.0]]])  # padding 0.0 would win a naive max
    assert pool(hidden, torch.tensor([[1, 1, 0]]), "max").tolist() == [[-3.0]]


def _alone(loaded, text):
    batch = loaded.tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        return loaded.model.base_model(**batch).last_hidden_state[0]


@pytest.mark.parametrize("mode", ["cls", "max", "last", "mean_sqrt_len"])
def test_engine_pools_as_the_spec_asks(tiny, mode):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel", pooling=mode))
    texts = ["a short one", "a somewhat longer text with more words in it", "mid length text"]
    outcomes = Engine(loaded, "embed").predict(texts)  # one batch: padding involved
    for text, outcome in zip(texts, outcomes, strict=True):
        hidden = _alone(loaded, text)
        expected = {
            "cls": hidden[0],
            "max": hidden.max(dim=0).values,
            "last": hidden[-1],
            "mean_sqrt_len": hidden.sum(dim=0) / len(hidden) ** 0.5,
        }[mode]
        assert np.abs(outcome.inference - expected.numpy()).max() <= 1e-5


def test_gpt2_embeds_with_its_last_token_by_default(tiny):
    loaded = load(ModelSpec(str(tiny["gpt2"]), model_class="AutoModelForCausalLM"))
    engine = Engine(loaded, "embed")
    assert engine.task.pooling == "last"
    texts = ["a short one", "a somewhat longer text with more words in it"]
    for text, outcome in zip(texts, engine.predict(texts), strict=True):
        assert np.abs(outcome.inference - _alone(loaded, text)[-1].numpy()).max() <= 1e-5


def test_normalize_in_the_spec_gives_unit_vectors(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel", normalize=True))
    plain = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    [unit] = Engine(loaded, "embed").predict(["some text"])
    [raw] = Engine(plain, "embed").predict(["some text"])
    assert np.linalg.norm(unit.inference) == pytest.approx(1.0, abs=1e-5)
    assert np.abs(unit.inference - raw.inference / np.linalg.norm(raw.inference)).max() <= 1e-6


def test_exact_duplicates_are_run_once_and_counted_apart(tiny):
    engine = Engine(load(ModelSpec(str(tiny["bert"]), model_class="AutoModel")), "embed")
    texts = ["the quick brown fox", "short", "the quick brown fox", "", "short", "the quick"]
    outcomes = engine.predict(texts)
    assert [o.example for o in outcomes] == texts
    assert isinstance(outcomes[3], RecordError)
    first, again = outcomes[0].inference, outcomes[2].inference
    assert np.array_equal(first, again) and first is not again  # a copy, the same numbers
    assert np.array_equal(outcomes[1].inference, outcomes[4].inference)
    assert engine.stats["duplicates"] == 2
    alone = Engine(engine.loaded, "embed")
    alone.predict(["the quick brown fox", "short", "the quick"])
    assert engine.stats["tokens"] == alone.stats["tokens"]  # the model ran each text once
    assert engine.stats["records"] == 6 and engine.stats["errors"] == 1


def test_runner_reports_duplicates_beside_the_rate(tiny, tmp_path):
    from tether.inference.runner import RunConfig, run_file

    source = tmp_path / "in.txt"
    source.write_text("a text\nanother text\na text\na text\n")
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    summary = run_file(
        loaded, RunConfig(str(source), str(tmp_path / "out.parquet")), progress=False
    )
    assert summary.records == summary.written == 4 and summary.duplicates == 2
    assert "2 exact duplicate(s) run once and copied" in summary.line()


# -- mutants that survived a mutation run (.ci/mutation engine) ----------------------------

import threading  # noqa: E402

from tether.inference.engine import is_finite  # noqa: E402


class _OutputTask(_ScriptedTask):
    """Answers each text with ``outputs[text]`` (default: the text upper-cased)."""

    def __init__(self, loaded, outputs):
        super().__init__(loaded)
        self.outputs = outputs
        self.threads: set[str] = set()

    def encode(self, examples):
        self.threads.add(threading.current_thread().name)
        return super().encode(examples)

    def forward(self, batch):
        return [self.outputs.get(item.data, item.data.upper()) for item in batch]


NAN = float("nan")


@pytest.mark.parametrize(
    "output",
    [
        NAN,
        float("-inf"),
        (1.0, NAN),
        [[1.0], [NAN]],
        {"score": 1.0, "vector": [2.0, NAN]},
        torch.tensor([1.0, float("inf")]),
        np.array([NAN, 1.0], dtype=np.float32),
        np.float64("nan"),
    ],
    ids=["float", "inf", "tuple", "nested-list", "dict", "tensor", "array", "np-scalar"],
)
def test_a_non_finite_output_anywhere_becomes_a_model_error_row(tiny_bert, output):
    engine = _scripted(tiny_bert)
    engine.task = _OutputTask(tiny_bert, {"bad": output})
    good, bad = engine.predict(["good", "bad"])
    assert isinstance(good, Prediction) and good.inference == "GOOD"
    assert bad == RecordError("bad", "model output is not finite (NaN or inf)", "model-error")
    assert engine.stats["errors"] == 1


def test_is_finite_reads_every_kind_of_output():
    assert is_finite(1.0) and is_finite("text") and is_finite(None) and is_finite(3)
    assert is_finite({"a": [1.0, (2.0,)]}) and not is_finite({"a": [1.0, (NAN,)]})
    assert is_finite(torch.tensor([1.0, 2.0])) and not is_finite(torch.tensor([[NAN]]))
    assert is_finite(torch.tensor([1, 2])) and is_finite(np.array([1, 2]))
    assert not is_finite(np.array([1.0, np.inf])) and not is_finite(np.complex64(complex(NAN, 0)))
    # A bfloat16 tensor has no numpy twin: it is widened before numpy sees it.
    assert not is_finite(torch.tensor([NAN], dtype=torch.bfloat16))
    assert is_finite(torch.tensor([1.0], dtype=torch.bfloat16))


def test_every_error_row_keeps_its_record_reason_and_kind(tiny_bert):
    engine = _scripted(tiny_bert)
    examples = ["refuse this", "overlong text", "problem here", "fine"]
    refused, overlong, problem, fine = engine.predict(examples)
    assert refused == RecordError("refuse this", "refused by check", "refused")
    assert overlong == RecordError("overlong text", "too long to encode", "too-long")
    assert problem == RecordError("problem here", "model refuses this one", "too-odd")
    assert fine == Prediction("fine", "FINE", engine.model_id)


def test_stream_encodes_chunk_by_chunk_in_a_background_thread(tiny_bert):
    engine = _scripted(tiny_bert)
    engine.task = _OutputTask(tiny_bert, {})
    outcomes = list(engine.stream(iter(["a", "b", "c", "d", "e", "f", "g"]), chunk_size=3))
    assert [o.inference for o in outcomes] == list("ABCDEFG")
    # Memory is bounded by a chunk: never more than chunk_size records encoded at once.
    assert [len(c) for c in engine.task.encode_calls] == [3, 3, 1]
    # ...and encoding overlaps the model: it runs in the engine's own encoder thread.
    assert len(engine.task.threads) == 1
    assert engine.task.threads.pop().startswith("tether-encode")


class _ShortTask(_ScriptedTask):
    """A broken task: one encoding, or one output, fewer than it was given records."""

    def __init__(self, loaded, short):
        super().__init__(loaded)
        self.short = short

    def encode(self, examples):
        encoded = super().encode(examples)
        return encoded[:-1] if self.short == "encode" else encoded

    def forward(self, batch):
        outputs = super().forward(batch)
        return outputs[:-1] if self.short == "forward" else outputs


@pytest.mark.parametrize("short", ["encode", "forward"])
def test_a_task_that_loses_a_record_fails_loudly_rather_than_dropping_it(tiny_bert, short):
    engine = _scripted(tiny_bert)
    engine.task = _ShortTask(tiny_bert, short)
    # The pairing of records with the task's answers is strict (zip(strict=True)), so a
    # lost record stops the run even under `python -O`, where asserts are gone.
    with pytest.raises(ValueError, match="zip"):
        engine.predict(["one", "two", "three"])


def test_an_engine_embeds_by_default_and_keeps_its_loaded_model(tiny_bert):
    engine = Engine(tiny_bert)
    assert engine.task.name == "embed" and engine.loaded is tiny_bert
    assert engine.model_id == tiny_bert.model_id
