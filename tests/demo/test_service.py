"""What the demo answers, without a browser: each task on tiny models, and search."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import expected_label
from tether import ModelSpec, TaskError, load
from tether.demo.service import Corpus, DemoService, task_for
from tether.inference.engine import Engine

TEXTS = ["the quick brown fox", "paris is the capital of france", "numbers like 42"]


def _own(path):
    from tether import inspect

    return load(ModelSpec(str(path), model_class=inspect(str(path)).suggested_class))


def test_a_classifier_shows_its_label(tiny):
    loaded = _own(tiny["distilbert-cls"])
    service = DemoService(loaded)
    assert service.task == "classify"
    answer = service.respond("good great excellent")
    assert answer.startswith(
        f"**label: {expected_label(tiny['distilbert-cls'], 'good great excellent')}**"
    )


def test_a_masked_lm_shows_candidates(tiny):
    loaded = _own(tiny["bert-mlm"])
    service = DemoService(loaded, top_k=3)
    assert task_for(loaded) == "fill-mask"
    answer = service.respond("the quick brown [MASK]")
    assert answer.startswith("**candidates**:") and answer.count("\n- ") == 3
    assert "no-mask" in service.respond("no mask here")


def test_an_embedding_model_searches_its_corpus(tiny):
    loaded = _own(tiny["bert"])
    vectors = np.stack([o.inference for o in Engine(loaded, "embed").predict(TEXTS)])
    service = DemoService(loaded, corpus=Corpus(TEXTS, vectors), top_k=2)
    answer = service.respond(TEXTS[1])
    lines = answer.splitlines()
    assert lines[0] == "**nearest 2 of 3** (cosine similarity):"
    assert lines[2] == f"1. (1.000) {TEXTS[1]}"
    assert "**error** (empty)" in service.respond("   ")


def test_without_a_corpus_an_embedding_is_described(tiny):
    service = DemoService(_own(tiny["bert"]))
    assert service.respond("hello world").startswith("**embedding**: 32 dimensions")


def test_a_corpus_needs_an_embedding_model(tiny):
    with pytest.raises(TaskError, match="embedding model"):
        DemoService(_own(tiny["distilbert-cls"]), corpus=Corpus(["a"], np.zeros((1, 4))))
