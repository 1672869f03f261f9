"""How the command line shows a TetherError: message, hint, and the flags the hint means.

Library hints name API arguments (``set trust_remote_code=True``), because a library
user has no flags. This is the one place that translates them for the command line,
as huggingface_hub keeps its CLI advice in ``cli/_errors.py``.
"""

from __future__ import annotations

import re

from tether.errors import TetherError

#: API argument named in a hint -> the flag that sets it on the command line.
FLAG_FOR_ARGUMENT = {
    "trust_remote_code": "--trust-remote-code",
    "allow_pickle": "--allow-pickle",
    "allow_new_weights": "--allow-new-weights",
    "allow_unused_weights": "--allow-unused-weights",
    "model_class": "--class",
    "task": "--task",
    "revision": "--revision",
    "tokenizer": "--tokenizer",
    "device": "--device",
    "dtype": "--dtype",
    "max_length": "--max-length",
    "pooling": "--pooling",
    "overwrite": "--overwrite",
    "input": "--input",
    "output": "--output",
    "errors": "--errors",
    "resume": "--resume",
    "text_column": "--text-column",
    "id_column": "--id-column",
    "input_format": "--input-format",
    "format": "--input-format",
    "output_format": "--output-format",
    "chunk_size": "--chunk-size",
    "max_tokens": "--max-tokens",
    "max_rows": "--max-rows",
    "top_k": "--top-k",
    "texts": "--texts",
    "mapping": "--rename",
    "tolerance": "--preset",
    "transform": "--transform",
    "atol": "--atol",
    "rtol": "--rtol",
    "min_cosine": "--min-cosine",
    "min_topk": "--min-topk",
    "plot": "--plot",
    "k": "--k",
    "k_range": "--k",
    "method": "--method",
    "seed": "--seed",
    "label_field": "--label-field",
    "label_column": "--label-field",
    "embeddings": "--embeddings",
    "projection": "--projection",
    "maps": "--map",
    "level": "--level",
    "backend": "--backend",
}
_ARGUMENT = re.compile(r"\b([a-z_]+)=")


def flags_for(hint: str) -> list[str]:
    """The command-line flags for the API arguments a hint names, in order, once each."""
    flags = [FLAG_FOR_ARGUMENT.get(name) for name in _ARGUMENT.findall(hint)]
    return list(dict.fromkeys(f for f in flags if f))


def format_error(exc: TetherError) -> tuple[str, str]:
    """(message line, hint line) as the command line prints them."""
    hint = exc.hint
    flags = flags_for(hint)
    if flags:
        hint += f" (command line: {', '.join(flags)})"
    return f"error: {exc.message}", f"  -> {hint}"
