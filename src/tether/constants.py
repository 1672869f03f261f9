"""Names and defaults used across tether, in one place."""

from __future__ import annotations

SPEC_FILENAME = "tether-spec.json"

#: Weight file suffixes whose loading runs Python's unpickler (arbitrary code).
PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: Weight file suffixes that hold tensors only.
SAFE_WEIGHT_SUFFIXES = (".safetensors",)
#: Other weight formats tether recognises but does not load.
OTHER_WEIGHT_SUFFIXES = (".h5", ".msgpack", ".onnx", ".gguf")

#: Files that make a directory carry a tokenizer.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
    "special_tokens_map.json",
)

#: Files that make a directory carry an image processor, feature extractor (audio) or
#: multimodal processor.
PREPROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")

DTYPES = ("float32", "float16", "bfloat16", "auto")
POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len", "last")

#: A name a user can pass instead of a path to get the shipped all-MiniLM-L6-v2.
DEFAULT_MODEL_ALIAS = "minilm"
