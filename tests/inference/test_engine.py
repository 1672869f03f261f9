import numpy as np
import pytest
import torch

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
        assert result["label"] in {"negative", "positive"}
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
    assert info.value.field == next(iter(limits))


def _alone(loaded, example):
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
        expected = _alone(loaded, example).last_hidden_state[0]
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
        expected = _alone(loaded, {"input_ids": example})
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
