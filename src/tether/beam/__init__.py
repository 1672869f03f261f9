"""tether in Apache Beam: ``ModelHandler``s for ``RunInference`` and a pipeline builder.

Needs the ``beam`` extra (``pip install 'tether[beam]'``); this is the only tether
package that imports ``apache_beam``.

    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference
    from tether import ModelSpec
    from tether.beam import TextEmbeddingHandler, RunTether

    handler = TextEmbeddingHandler(ModelSpec("minilm", model_class="AutoModel"))
    with beam.Pipeline() as p:
        texts = p | beam.Create(["a text", "another"])
        results = texts | RunInference(handler)          # PredictionResult per record
        outputs = texts | RunTether(handler)             # .predictions and .errors
"""

from __future__ import annotations

from tether.errors import require_extra

require_extra("apache_beam", "beam")

from tether.beam.handlers import (  # noqa: E402
    HANDLERS,
    FillMaskHandler,
    KeyedTensorHandler,
    NumpyHandler,
    PipelineHandler,
    TensorHandler,
    TetherModel,
    TetherModelHandler,
    TextClassificationHandler,
    TextEmbeddingHandler,
    is_error,
    record_weight,
)
from tether.beam.transforms import RunTether, SplitErrors, TetherOutputs  # noqa: E402

__all__ = [
    "HANDLERS",
    "FillMaskHandler",
    "KeyedTensorHandler",
    "NumpyHandler",
    "PipelineHandler",
    "RunTether",
    "SplitErrors",
    "TensorHandler",
    "TetherModel",
    "TetherModelHandler",
    "TetherOutputs",
    "TextClassificationHandler",
    "TextEmbeddingHandler",
    "is_error",
    "record_weight",
]
