"""tether.beam handlers in real Beam pipelines (DirectRunner), compared with the local engine."""

from __future__ import annotations

import pickle
import sys
from typing import Any

import numpy as np
import pytest
import torch

from conftest import optional_import

beam = optional_import("apache_beam", "beam")

from apache_beam.internal.cloudpickle import cloudpickle  # noqa: E402
from apache_beam.metrics.metric import MetricsFilter  # noqa: E402
from apache_beam.ml.inference.base import (  # noqa: E402
    KeyedModelHandler,
    ModelMetadata,
    PredictionResult,
    RunInference,
)
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from tether import ModelSpec, SourceNotFoundError, TetherError, load  # noqa: E402
from tether.beam import (  # noqa: E402
    FillMaskHandler,
    KeyedTensorHandler,
    NumpyHandler,
    PipelineHandler,
    RunTether,
    TensorHandler,
    TextClassificationHandler,
    TextEmbeddingHandler,
    record_weight,
)
from tether.inference.engine import Engine  # noqa: E402
from tether.inference.results import RecordError  # noqa: E402

# Multi-process workers cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TEXTS = [
    "hello world, the quick fox",
    "tether keeps the model you run exactly the model you tested",
    "short",
    "good great excellent happy bad awful terrible sad " * 3,
    "a",
    "the same model, the same outputs, on every worker of the pipeline",
]
MASKED = ["the quick [MASK] fox", "hello [MASK] world [MASK]", "[MASK] is here"]
IN_MEMORY = PipelineOptions([])
MULTI_PROCESS = PipelineOptions(
    ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
)
TOLERANCE = 1e-6


# -- helpers ----------------------------------------------------------------------------


def max_diff(a: Any, b: Any) -> float:
    """Largest absolute difference between two nested outputs; inf if they differ in kind."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return float("inf")
        return max((max_diff(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return float("inf")
        return max((max_diff(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    if isinstance(a, str | bool) or isinstance(b, str | bool) or a is None or b is None:
        return 0.0 if a == b else float("inf")
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        return float("inf")
    return float(np.abs(x - y).max()) if x.size else 0.0


def keyed_matcher(expected: dict[int, Any], model_id: str) -> Any:
    """Checks (key, PredictionResult) outputs: every key once, outputs as the engine's."""

    def check(actual: list[Any]) -> None:
        got = {}
        for key, result in actual:
            assert isinstance(result, PredictionResult), type(result)
            assert result.model_id == model_id, result.model_id
            got[key] = result.inference
        assert sorted(got) == sorted(expected), (sorted(got), sorted(expected))
        for key, inference in got.items():
            diff = max_diff(inference, expected[key])
            assert diff <= TOLERANCE, f"key {key}: max abs diff {diff}"

    return check


def engine_outputs(spec: ModelSpec, task: str, examples: list[Any], **options: Any) -> list[Any]:
    outcomes = Engine(load(spec), task, **options).predict(examples)
    assert not any(isinstance(o, RecordError) for o in outcomes)
    return [o.inference for o in outcomes]


def add_keyed_check(
    pipeline: Any, name: str, handler: Any, examples: list[Any], expected: list[Any]
) -> None:
    """Keyed examples through RunTether: predictions equal the engine's, keys kept, no errors."""
    keyed = [(f"{name}-{i}", e) for i, e in enumerate(examples)]
    outputs = (
        pipeline
        | f"Create{name}" >> beam.Create(keyed)
        | f"Run{name}" >> RunTether(handler, keyed=True)
    )
    want = {k: e for (k, _), e in zip(keyed, expected, strict=True)}
    assert_that(
        outputs.predictions, keyed_matcher(want, handler.spec.model_id), label=f"Check{name}"
    )
    assert_that(outputs.errors, equal_to([]), label=f"NoErrors{name}")


# -- fixtures: one case per handler -----------------------------------------------------


@pytest.fixture(scope="module")
def cases(tiny: dict[str, Any]) -> dict[str, tuple[Any, list[Any], list[Any]]]:
    """name -> (handler, examples, the local engine's outputs for them)."""
    bert = ModelSpec(str(tiny["bert"]), model_class="AutoModel")
    cls = ModelSpec(str(tiny["distilbert-cls"]), model_class="AutoModelForSequenceClassification")
    mlm = ModelSpec(str(tiny["bert-mlm"]), model_class="AutoModelForMaskedLM")
    pipe = ModelSpec(str(tiny["distilbert-cls"]), task="text-classification")
    tokenizer = load(bert).tokenizer
    ids = [tokenizer(t, return_tensors="pt")["input_ids"][0] for t in TEXTS]
    as_numpy = [i.numpy() for i in ids]
    as_dicts = [
        {"input_ids": i, "attention_mask": torch.ones_like(i), "token_type_ids": i * 0} for i in ids
    ]
    small = {"min_batch_records": 2, "max_batch_records": 4}  # several Beam batches per pipeline
    return {
        "embed": (TextEmbeddingHandler(bert, **small), TEXTS, engine_outputs(bert, "embed", TEXTS)),
        "classify": (
            TextClassificationHandler(cls, **small),
            TEXTS,
            engine_outputs(cls, "classify", TEXTS),
        ),
        "fill-mask": (
            FillMaskHandler(mlm, top_k=3, **small),
            MASKED,
            engine_outputs(mlm, "fill-mask", MASKED, top_k=3),
        ),
        "pipeline": (
            PipelineHandler(pipe, pipeline_kwargs={"top_k": 2}, **small),
            TEXTS,
            engine_outputs(pipe, "pipeline", TEXTS, top_k=2),
        ),
        "tensor": (TensorHandler(bert, **small), ids, engine_outputs(bert, "tensor", ids)),
        "numpy": (
            NumpyHandler(bert, **small),
            as_numpy,
            engine_outputs(bert, "tensor", as_numpy),
        ),
        "keyed-tensors": (
            KeyedTensorHandler(bert, **small),
            as_dicts,
            engine_outputs(bert, "tensor", as_dicts),
        ),
    }


CASE_NAMES = ["embed", "classify", "fill-mask", "pipeline", "tensor", "numpy", "keyed-tensors"]


# -- every handler equals the local engine ---------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
def test_handler_in_pipeline_equals_local_engine_and_keeps_keys(cases, name):
    handler, examples, expected = cases[name]
    with beam.Pipeline(options=IN_MEMORY) as p:
        add_keyed_check(p, name, handler, examples, expected)


@pytest.mark.slow
def test_every_handler_in_a_multi_process_pipeline_equals_local_engine(cases):
    with beam.Pipeline(options=MULTI_PROCESS) as p:
        for name in CASE_NAMES:
            handler, examples, expected = cases[name]
            add_keyed_check(p, name, handler, examples, expected)


def test_plain_run_inference_gives_prediction_results_in_input_order_per_record(cases):
    handler, examples, expected = cases["embed"]
    want = {t: e for t, e in zip(examples, expected, strict=True)}

    def check(actual: list[Any]) -> None:
        assert sorted(r.example for r in actual) == sorted(examples)
        for result in actual:
            assert isinstance(result, PredictionResult)
            assert max_diff(result.inference, want[result.example]) <= TOLERANCE

    with beam.Pipeline(options=IN_MEMORY) as p:
        results = p | beam.Create(examples) | RunInference(handler)
        assert_that(results, check)


def test_keyed_model_handler_keeps_keys(cases):
    handler, examples, expected = cases["classify"]
    keyed = list(enumerate(examples))
    with beam.Pipeline(options=IN_MEMORY) as p:
        results = p | beam.Create(keyed) | RunInference(KeyedModelHandler(handler))
        assert_that(results, keyed_matcher(dict(enumerate(expected)), handler.spec.model_id))


def test_minilm_embeddings_in_beam_equal_the_engine(minilm_dir):
    spec = ModelSpec("minilm", model_class="AutoModel")
    texts = [*TEXTS, "x " * 600]  # one overlong text: truncated, not an error
    expected = engine_outputs(spec, "embed", texts)
    with beam.Pipeline(options=IN_MEMORY) as p:
        add_keyed_check(p, "minilm", TextEmbeddingHandler(spec), texts, expected)


# -- bad records -----------------------------------------------------------------------


BAD = ["", "   ", None, 42, ["a list"], {"a": "dict"}]


def test_bad_records_land_in_errors_and_counts_add_up(tiny):
    spec = ModelSpec(str(tiny["bert"]), model_class="AutoModel", max_length=16)
    good = [*TEXTS, "word " * 200]  # the last one is overlong: truncated and counted
    examples = [(f"k{i}", e) for i, e in enumerate([*good, *BAD])]
    handler = TextEmbeddingHandler(spec, min_batch_records=3, max_batch_records=3)
    pipeline = beam.Pipeline(options=IN_MEMORY)
    outputs = pipeline | beam.Create(examples) | RunTether(handler, keyed=True)
    assert_that(
        outputs.predictions | "PredKeys" >> beam.Map(lambda kv: kv[0]),
        equal_to([f"k{i}" for i in range(len(good))]),
        label="Predictions",
    )
    bad_keys = [f"k{i}" for i in range(len(good), len(examples))]
    kinds = ["empty", "empty", "not-text", "not-text", "not-text", "not-text"]
    assert_that(
        outputs.errors | "ErrKinds" >> beam.Map(lambda kv: (kv[0], kv[1].kind)),
        equal_to(list(zip(bad_keys, kinds, strict=True))),
        label="Errors",
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = counter_values(result, "tether")
    assert counters["records_in"] == len(examples)
    assert counters["predictions"] + counters["errors"] == len(examples)
    assert counters["errors"] == len(BAD)
    local = Engine(load(spec), "embed")
    local.predict(good)
    assert counters["truncated_records"] == local.stats["truncated"] >= 1
    assert counters["num_inferences"] == len(examples)  # RunInference's own metric, our namespace


def test_an_element_that_is_not_a_key_value_pair_does_not_sink_its_batch(tiny):
    spec = ModelSpec(str(tiny["bert"]), model_class="AutoModel")
    handler = TextEmbeddingHandler(spec, min_batch_records=4, max_batch_records=4)
    examples = [("a", "one text"), "not a pair", ("b", "two texts"), ("c", "three")]
    with beam.Pipeline(options=IN_MEMORY) as p:
        outputs = p | beam.Create(examples) | RunTether(handler, keyed=True)
        assert_that(
            outputs.predictions | "Keys" >> beam.Map(lambda kv: kv[0]),
            equal_to(["a", "b", "c"]),
            label="Predictions",
        )
        assert_that(
            outputs.errors | "Kinds" >> beam.Map(lambda kv: kv[1].kind),
            equal_to(["not-keyed"]),
            label="Errors",
        )


def test_a_batch_that_raises_goes_to_the_dead_letter_output_record_by_record(tiny):
    """Beam's with_exception_handling catches a failing batch; RunTether expands it."""
    spec = ModelSpec(str(tiny["bert"]), model_class="AutoModel")
    handler = TextEmbeddingHandler(spec, min_batch_records=2, max_batch_records=2)
    # KeyedModelHandler itself fails a batch holding an element it cannot unzip.
    examples = [("a", "one"), ("b", "two"), ("c", "three"), 404, ("e", "five")]
    with beam.Pipeline(options=IN_MEMORY) as p:
        raw_results, dlq = (
            p
            | "Raw" >> beam.Create(examples)
            | RunInference(KeyedModelHandler(handler)).with_exception_handling()
        )
        outputs = p | "Tether" >> beam.Create(examples) | RunTether(KeyedModelHandler(handler))
        failed = dlq.failed_inferences | beam.FlatMap(lambda failure: failure[0])
        lost_in_dlq = failed | "CountFailed" >> beam.combiners.Count.Globally()
        kept = raw_results | "CountKept" >> beam.combiners.Count.Globally()
        both = (lost_in_dlq, kept) | beam.Flatten() | beam.combiners.ToList()
        assert_that(both | beam.Map(sum), equal_to([len(examples)]), label="RawAccounting")
        assert_that(
            outputs.errors | "Kinds" >> beam.Map(lambda e: e.kind),
            equal_to(["batch-failed", "batch-failed"]),  # 404 and its batch-mate
            label="BatchFailedRecords",
        )
        assert_that(
            outputs.predictions | "Count" >> beam.combiners.Count.Globally(),
            equal_to([len(examples) - 2]),
            label="OtherBatchesKept",
        )


# -- ModelHandler contract -------------------------------------------------------------


def test_model_is_loaded_on_the_worker_not_when_the_handler_is_built(tmp_path):
    spec = ModelSpec(str(tmp_path / "only-on-the-worker"), model_class="AutoModel", device="auto")
    handler = TextEmbeddingHandler(spec)  # builds fine: nothing is loaded here
    shipped = pickle.loads(pickle.dumps(handler))
    assert shipped.spec == spec and shipped.spec.device == "auto"
    with pytest.raises(SourceNotFoundError):
        shipped.load_model()


def test_device_auto_resolves_where_the_model_loads(tiny):
    spec = ModelSpec(str(tiny["bert"]), model_class="AutoModel", device="auto")
    model = TextEmbeddingHandler(spec).load_model()
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert model.engine.loaded.device.type == expected


def test_update_model_path_loads_the_new_model(tiny):
    handler = TextEmbeddingHandler(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    handler.update_model_path(str(tiny["roberta"]))
    [result] = handler.run_inference(["hello"], handler.load_model())
    assert result.model_id == str(tiny["roberta"])
    [expected] = engine_outputs(
        ModelSpec(str(tiny["roberta"]), model_class="AutoModel"), "embed", ["hello"]
    )
    assert max_diff(result.inference, expected) <= TOLERANCE


def test_side_input_model_update_switches_the_model_in_a_pipeline(tiny):
    handler = TextEmbeddingHandler(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    new = str(tiny["roberta"])
    expected = engine_outputs(ModelSpec(new, model_class="AutoModel"), "embed", TEXTS)
    with beam.Pipeline(options=IN_MEMORY) as p:
        metadata = p | "Model" >> beam.Create([ModelMetadata(model_id=new, model_name="v2")])
        results = (
            p
            | beam.Create(list(enumerate(TEXTS)))
            | RunInference(KeyedModelHandler(handler), model_metadata_pcoll=metadata)
        )
        assert_that(results, keyed_matcher(dict(enumerate(expected)), new))


def test_shared_model_across_processes_gives_the_same_outputs(cases):
    _, examples, expected = cases["embed"]
    spec = cases["embed"][0].spec
    handler = TextEmbeddingHandler(spec, model_copies=1)
    assert handler.share_model_across_processes() and handler.model_copies() == 1
    assert TextEmbeddingHandler(spec, large_model=True).share_model_across_processes()
    assert not TextEmbeddingHandler(spec).share_model_across_processes()
    with beam.Pipeline(options=IN_MEMORY) as p:  # the model runs behind a process proxy
        add_keyed_check(p, "shared", handler, examples, expected)


def test_max_batch_weight_gives_working_length_aware_batches(tiny):
    spec = ModelSpec(str(tiny["bert"]), model_class="AutoModel")
    handler = TextEmbeddingHandler(spec, max_batch_weight=60)
    kwargs = handler.batch_elements_kwargs()
    assert "max_batch_weight" not in kwargs  # Beam 2.77's BatchElements raises TypeError on it
    texts = [f"text {i} " + "w" * (i * 7 % 40) for i in range(40)]

    def check(batches: list[list[str]]) -> None:
        assert sorted(t for b in batches for t in b) == sorted(texts)
        for batch in batches:
            assert len(batch) == 1 or sum(map(record_weight, batch)) <= 60, batch

    with beam.Pipeline(options=IN_MEMORY) as p:
        texts_pc = p | beam.Create(texts)
        assert_that(texts_pc | beam.BatchElements(**kwargs), check, label="Batches")
        outputs = texts_pc | RunTether(handler)
        assert_that(
            outputs.predictions | beam.combiners.Count.Globally(), equal_to([40]), label="All"
        )


def test_get_num_bytes_counts_payload_bytes_not_pickles(tiny):
    handler = TextEmbeddingHandler(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    assert handler.get_num_bytes(["héllo", "ab"]) == 6 + 2
    array = np.zeros((5, 4), dtype=np.float32)
    assert handler.get_num_bytes([array, torch.zeros(3, dtype=torch.int64)]) == 80 + 24
    assert handler.get_num_bytes([{"input_ids": array, "mask": array}]) == 160


def test_metrics_namespace_is_configurable(tiny):
    spec = ModelSpec(str(tiny["bert"]), model_class="AutoModel")
    assert TextEmbeddingHandler(spec).get_metrics_namespace() == "tether"
    handler = TextEmbeddingHandler(spec, metrics_namespace="my-job")
    pipeline = beam.Pipeline(options=IN_MEMORY)
    _ = pipeline | beam.Create(["a", "b", ""]) | RunTether(handler)
    result = pipeline.run()
    result.wait_until_finish()
    counters = counter_values(result, "my-job")
    assert counters["num_inferences"] == 3
    assert counters["record_errors"] == 1


def test_inference_args_are_refused_with_a_hint(tiny):
    handler = TextEmbeddingHandler(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    with pytest.raises(TetherError, match="task options to the handler"):
        handler.validate_inference_args({"device": "cuda"})
    handler.validate_inference_args(None)


def test_bad_handler_arguments_are_clear_errors(tiny):
    spec = ModelSpec(str(tiny["bert"]), model_class="AutoModel")
    with pytest.raises(TetherError, match="ModelSpec"):
        TextEmbeddingHandler(str(tiny["bert"]))  # type: ignore[arg-type]
    with pytest.raises(TetherError, match="batch sizes"):
        TextEmbeddingHandler(spec, min_batch_records=10, max_batch_records=2)


def counter_values(result: Any, namespace: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + int(counter.committed or 0)
    return totals
