"""``pipeline``: any ``transformers.pipeline()`` task over strings or file paths.

For image and audio tasks a string is a file path (or URL-free path), decoded here, in
the engine's background encoding thread: images with Pillow, WAV/FLAC/OGG audio with
soundfile (no ffmpeg binary). A missing, unreadable or corrupt file is one error row.
"""

from __future__ import annotations

from typing import Any

from tether.errors import TaskError
from tether.inference.tasks.base import Encoded, InferenceFn, RecordProblem, Task


class PipelineTask(Task):
    name = "pipeline"

    def __init__(
        self,
        loaded: Any,
        *,
        inference_fn: InferenceFn | None = None,
        **pipeline_kwargs: Any,
    ) -> None:
        """``pipeline_kwargs`` are the pipeline's call arguments (``top_k``,
        ``max_new_tokens``...); ``inference_fn(pipe, inputs, device, pipeline_kwargs)``
        replaces the call."""
        super().__init__(loaded, inference_fn=inference_fn)
        if loaded.pipeline is None:
            raise TaskError(
                "The pipeline task needs a spec with task set (e.g. task='text-classification').",
                "Set ModelSpec.task instead of model_class.",
            )
        self.pipe = loaded.pipeline
        self.kwargs = pipeline_kwargs
        task = str(getattr(self.pipe, "task", ""))
        self.media = "audio" if task in AUDIO_TASKS else "image" if task in IMAGE_TASKS else None
        processor = getattr(self.pipe, "feature_extractor", None)
        self.sampling_rate = getattr(processor, "sampling_rate", None)

    def check(self, example: Any) -> None:
        if isinstance(example, dict):
            return  # e.g. question-answering {"question": ..., "context": ...}
        if self.media is not None and isinstance(example, bytes | bytearray):
            if not example:
                raise RecordProblem("empty file contents", kind="empty")
            return  # raw file contents (a Parquet binary column), decoded in encode
        if not isinstance(example, str):
            raise RecordProblem(
                f"expected a string (text or file path), got {type(example).__name__}",
                kind="not-text",
            )
        if not example.strip():
            raise RecordProblem("empty or whitespace-only input", kind="empty")

    def encode(self, examples: list[Any]) -> list[Encoded]:
        if self.media is None:
            return [Encoded(len(str(e)), e) for e in examples]
        decoded = []
        for example in examples:
            if not isinstance(example, str | bytes | bytearray):
                decoded.append(Encoded(1, example))  # already an array / image / dict
            elif self.media == "image":
                decoded.append(Encoded(1, _read_image(example)))
            else:
                audio = _read_audio(example, self.sampling_rate)
                decoded.append(Encoded(len(audio["raw"]), audio))
        return decoded

    def forward(self, batch: list[Encoded]) -> list[Any]:
        # Copies of dict inputs: some pipelines pop keys from them (speech recognition
        # takes "raw" out), which would break the retry of a failed batch one by one.
        inputs = [dict(item.data) if isinstance(item.data, dict) else item.data for item in batch]
        if self.inference_fn is not None:
            outputs = list(self.inference_fn(self.pipe, inputs, self.device, self.kwargs))
            if len(outputs) != len(inputs):
                raise RuntimeError(
                    f"inference_fn returned {len(outputs)} results for {len(inputs)} inputs"
                )
            return outputs
        if len(inputs) == 1:
            # Pipelines unwrap one-item lists, and some wrap a single input in a list: run
            # it twice so its output has the same shape as in any larger batch.
            twice = [inputs[0], dict(inputs[0]) if isinstance(inputs[0], dict) else inputs[0]]
            return list(self.pipe(twice, batch_size=2, **self.kwargs))[:1]
        outputs = list(self.pipe(inputs, batch_size=len(inputs), **self.kwargs))
        if len(outputs) != len(inputs):
            raise RuntimeError(f"pipeline returned {len(outputs)} results for {len(inputs)} inputs")
        return outputs


#: pipeline() tasks whose string inputs are image or audio file paths.
IMAGE_TASKS = frozenset(
    {
        "image-classification",
        "zero-shot-image-classification",
        "object-detection",
        "zero-shot-object-detection",
        "image-segmentation",
        "image-feature-extraction",
        "depth-estimation",
        "image-to-text",
        "mask-generation",
    }
)
AUDIO_TASKS = frozenset(
    {"audio-classification", "automatic-speech-recognition", "zero-shot-audio-classification"}
)


def _read_image(source: str | bytes | bytearray) -> Any:
    """An RGB image from a path or from a file's raw bytes."""
    import io

    from PIL import Image, UnidentifiedImageError

    name = source if isinstance(source, str) else f"<{len(source)} bytes>"
    try:
        with Image.open(source if isinstance(source, str) else io.BytesIO(source)) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise RecordProblem(f"no such image file: {name}", kind="missing-file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise RecordProblem(f"unreadable image {name}: {exc}", kind="bad-file") from None


def _read_audio(path: str | bytes | bytearray, sampling_rate: int | None) -> dict[str, Any]:
    """Mono float32 samples from a path or from a file's raw bytes."""
    import io
    import os

    try:
        import soundfile
    except ImportError:
        raise RecordProblem(
            "decoding audio files needs the soundfile package (pip install 'tether[audio]')",
            kind="missing-extra",
        ) from None
    if isinstance(path, str) and not os.path.isfile(path):
        raise RecordProblem(f"no such audio file: {path}", kind="missing-file")
    source = path if isinstance(path, str) else io.BytesIO(path)
    if not isinstance(path, str):
        path = f"<{len(path)} bytes>"
    try:
        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise RecordProblem(
            f"cannot decode audio {path} ({exc}); WAV, FLAC and OGG decode with soundfile, "
            "other formats need converting first (e.g. with ffmpeg)",
            kind="bad-file",
        ) from None
    if sampling_rate and rate != sampling_rate:
        raise RecordProblem(
            f"{path} is sampled at {rate} Hz but the model expects {sampling_rate} Hz; "
            "resample it first",
            kind="bad-file",
        )
    return {"raw": data.mean(axis=1), "sampling_rate": rate}  # mono, as the models expect
