"""Image and audio models: preprocessors found and loaded, file paths decoded per
record, outputs equal to plain ``transformers.pipeline`` on the same inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tether import ModelSpec, inspect, load, save, verify
from tether.bundles.probes import probe_audio, probe_images
from tether.cli.main import cli
from tether.inference.engine import Engine
from tether.inference.results import RecordError


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    paths = []
    for i, array in enumerate(probe_images(4)):
        path = root / f"image-{i}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[str]:
    import soundfile

    root = tmp_path_factory.mktemp("audio")
    paths = []
    for i, clip in enumerate(probe_audio(3, 16000)):
        path = root / f"clip-{i}.{'wav' if i % 2 == 0 else 'flac'}"
        soundfile.write(path, clip, 16000)
        paths.append(str(path))
    return paths


def _scores(result: list[dict]) -> dict[str, float]:
    return {item["label"]: item["score"] for item in result}


def test_inspect_finds_the_preprocessor_and_the_task(tiny):
    vit, audio = inspect(str(tiny["vit"])), inspect(str(tiny["wav2vec2"]))
    assert (vit.modality, vit.suggested_task) == ("image", "image-classification")
    assert (audio.modality, audio.suggested_task) == ("audio", "audio-classification")
    assert vit.preprocessor_files == ["preprocessor_config.json"] and not vit.tokenizer_files


def test_image_classification_equals_the_plain_pipeline(tiny, images, tmp_path):
    from PIL import Image
    from transformers import pipeline

    spec = ModelSpec(str(tiny["vit"]), task="image-classification")
    loaded = load(spec)
    assert loaded.tokenizer is None and loaded.processor is not None
    missing, corrupt = str(tmp_path / "missing.png"), tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png")
    outcomes = Engine(loaded, "pipeline").predict([*images, missing, str(corrupt)])
    plain = pipeline("image-classification", model=str(tiny["vit"]), device="cpu")
    expected = plain([Image.open(p).convert("RGB") for p in images])
    for outcome, reference in zip(outcomes[:4], expected, strict=True):
        got, want = _scores(outcome.inference), _scores(reference)
        assert got.keys() == want.keys() == {"dark", "light"}
        assert all(abs(got[k] - want[k]) <= 1e-5 for k in want)
    assert [(o.kind) for o in outcomes[4:]] == ["missing-file", "bad-file"]
    assert all(isinstance(o, RecordError) for o in outcomes[4:])


def test_tether_run_over_a_text_file_of_image_paths(tiny, images, tmp_path):
    """Before, this failed with `TokenizerError: no tokenizer files`."""
    listing = tmp_path / "images.txt"
    listing.write_text("\n".join(images) + "\n")
    out = tmp_path / "labels.jsonl"
    args = ["run", str(tiny["vit"]), "--task", "image-classification", "-i", str(listing)]
    result = CliRunner().invoke(cli, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "written 4 + errors 0" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4]


def test_audio_classification_equals_the_plain_pipeline_on_the_same_samples(tiny, clips):
    import soundfile
    from transformers import pipeline

    loaded = load(ModelSpec(str(tiny["wav2vec2"]), task="audio-classification"))
    outcomes = Engine(loaded, "pipeline").predict(clips)
    plain = pipeline("audio-classification", model=str(tiny["wav2vec2"]), device="cpu")
    for path, outcome in zip(clips, outcomes, strict=True):
        data, rate = soundfile.read(path, dtype="float32")
        want = _scores(plain({"raw": data, "sampling_rate": rate}))
        got = _scores(outcome.inference)
        assert got.keys() == want.keys() == {"low", "high"}
        assert all(abs(got[k] - want[k]) <= 1e-5 for k in want)


def test_bad_audio_files_are_one_error_row_each(tiny, clips, tmp_path):
    import soundfile

    wrong_rate = tmp_path / "8k.wav"
    soundfile.write(wrong_rate, np.zeros(4000, dtype=np.float32), 8000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....WAVEfmt nonsense")
    loaded = load(ModelSpec(str(tiny["wav2vec2"]), task="audio-classification"))
    inputs = [clips[0], str(wrong_rate), str(corrupt), str(tmp_path / "none.wav")]
    outcomes = Engine(loaded, "pipeline").predict(inputs)
    assert not isinstance(outcomes[0], RecordError)
    assert [o.kind for o in outcomes[1:]] == ["bad-file", "bad-file", "missing-file"]
    assert "8000 Hz" in outcomes[1].reason and "16000 Hz" in outcomes[1].reason


@pytest.mark.parametrize(
    ("name", "model_class"),
    [("vit", "ViTForImageClassification"), ("wav2vec2", "Wav2Vec2ForSequenceClassification")],
)
def test_image_and_audio_models_save_as_bundles_that_verify(tiny, tmp_path, name, model_class):
    """Before, save() demanded a tokenizer. Fingerprints use generated probe media."""
    bundle = save(ModelSpec(str(tiny[name]), model_class=model_class), tmp_path / name)
    assert (bundle / "preprocessor_config.json").is_file()
    report = verify(bundle)
    assert report.ok, report.format()
    assert report.comparison.max_abs_diff == 0.0
    names = [o["name"] for o in report.to_dict()["comparison"]["outputs"]]
    assert "logits" in names  # the fingerprint ran the model on the generated media


def test_a_processor_that_does_not_fit_the_model_is_refused(tiny, tmp_path):
    import shutil

    from tether import TokenizerError

    target = Path(shutil.copytree(tiny["vit"], tmp_path / "vit-224"))
    config = json.loads((target / "preprocessor_config.json").read_text())
    config["size"] = {"height": 224, "width": 224}
    (target / "preprocessor_config.json").write_text(json.dumps(config))
    with pytest.raises(TokenizerError, match="224-pixel images but the model expects 32"):
        load(ModelSpec(str(target), model_class="ViTForImageClassification"))


def test_embed_of_a_vision_encoder_is_its_pooled_output(tiny, images):
    """Before, `embed` of a ViT failed for want of a tokenizer."""
    import torch
    from PIL import Image

    loaded = load(ModelSpec(str(tiny["vit"]), model_class="ViTForImageClassification"))
    outcomes = Engine(loaded, "embed").predict([*images, "", 42])
    processor = loaded.processor
    for path, outcome in zip(images, outcomes, strict=False):
        pixels = processor(images=[Image.open(path).convert("RGB")], return_tensors="pt")
        with torch.inference_mode():
            expected = loaded.model.base_model(**pixels).last_hidden_state[0, 0]  # CLS
        got = torch.as_tensor(outcome.inference)
        assert got.shape == expected.shape == (32,)
        assert (got - expected).abs().max() <= 1e-6
    assert [o.kind for o in outcomes[4:]] == ["empty", "not-image"]


def test_raw_file_bytes_decode_like_paths(tiny, images, clips):
    """A Parquet binary column carries the files' contents instead of their paths."""
    vit = load(ModelSpec(str(tiny["vit"]), task="image-classification"))
    from_paths = Engine(vit, "pipeline").predict(images[:2])
    from_bytes = Engine(vit, "pipeline").predict(
        [Path(p).read_bytes() for p in images[:2]] + [b"", b"junk"]
    )
    assert [o.inference for o in from_bytes[:2]] == [o.inference for o in from_paths]
    assert [o.kind for o in from_bytes[2:]] == ["empty", "bad-file"]
    audio = load(ModelSpec(str(tiny["wav2vec2"]), task="audio-classification"))
    [by_path] = Engine(audio, "pipeline").predict(clips[:1])
    [by_bytes] = Engine(audio, "pipeline").predict([Path(clips[0]).read_bytes()])
    assert by_bytes.inference == by_path.inference


def test_zero_shot_image_classification_equals_the_plain_pipeline(tiny, images):
    from PIL import Image
    from transformers import pipeline

    loaded = load(ModelSpec(str(tiny["clip"]), task="zero-shot-image-classification"))
    assert loaded.report.modality == "multimodal"
    labels = ["a photo of a cat", "a photo of the sea"]
    outcomes = Engine(loaded, "pipeline", candidate_labels=labels).predict(images)
    plain = pipeline("zero-shot-image-classification", model=str(tiny["clip"]), device="cpu")
    for path, outcome in zip(images, outcomes, strict=True):
        want = _scores(plain(Image.open(path).convert("RGB"), candidate_labels=labels))
        got = _scores(outcome.inference)
        assert got.keys() == want.keys() == set(labels)
        assert all(abs(got[k] - want[k]) <= 1e-5 for k in want)


def test_clip_embeds_texts_and_images_into_one_space(tiny, images):
    import torch
    from PIL import Image

    loaded = load(ModelSpec(str(tiny["clip"]), model_class="CLIPModel"))
    texts = ["a photo of the sea", "the quick fox"]
    text_vectors = [o.inference for o in Engine(loaded, "embed").predict(texts)]
    image_vectors = [o.inference for o in Engine(loaded, "embed", modality="image").predict(images)]
    processor = loaded.processor
    with torch.inference_mode():
        want_text = loaded.model.get_text_features(
            **processor(text=texts, padding=True, return_tensors="pt")
        )
        pixels = processor(
            images=[Image.open(p).convert("RGB") for p in images], return_tensors="pt"
        )
        want_image = loaded.model.get_image_features(**pixels)
    want_text = getattr(want_text, "pooler_output", want_text)
    want_image = getattr(want_image, "pooler_output", want_image)
    assert np.stack(text_vectors).shape == (2, 16) == tuple(want_text.shape)
    assert np.abs(np.stack(text_vectors) - want_text.numpy()).max() <= 1e-5
    assert np.abs(np.stack(image_vectors) - want_image.numpy()).max() <= 1e-5


def test_tether_embed_of_image_paths_with_clip(tiny, images, tmp_path):
    import pyarrow.parquet as pq

    listing = tmp_path / "images.txt"
    listing.write_text("\n".join(images) + "\n")
    out = tmp_path / "vectors.parquet"
    args = ["embed", str(tiny["clip"]), "--modality", "image", "-i", str(listing), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    got = np.stack(pq.read_table(out).column("embedding").to_numpy(zero_copy_only=False))
    loaded = load(ModelSpec(str(tiny["clip"]), model_class="CLIPModel"))
    want = np.stack(
        [o.inference for o in Engine(loaded, "embed", modality="image").predict(images)]
    )
    assert got.shape == (4, 16) and np.abs(got - want).max() <= 1e-6


def _decoded_mask(value: dict) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(value["png"]))))


def test_object_detection_equals_the_plain_pipeline(tiny, images, tmp_path):
    from PIL import Image
    from transformers import pipeline

    spec = ModelSpec(str(tiny["yolos"]), task="object-detection")
    outcomes = Engine(load(spec), "pipeline", threshold=0.0).predict(images)
    plain = pipeline("object-detection", model=str(tiny["yolos"]), device="cpu")
    expected = plain([Image.open(p).convert("RGB") for p in images], threshold=0.0)
    for outcome, want in zip(outcomes, expected, strict=True):
        assert len(outcome.inference) == len(want) == 5  # one box per detection token
        for got_box, want_box in zip(outcome.inference, want, strict=True):
            assert got_box["label"] == want_box["label"] and got_box["box"] == want_box["box"]
            assert abs(got_box["score"] - want_box["score"]) <= 1e-5


def test_image_segmentation_of_a_semantic_model_equals_the_plain_pipeline(tiny, images, tmp_path):
    """Before, load() built AutoModelForImageSegmentation, which has no SegFormer: an error."""
    from PIL import Image
    from transformers import pipeline

    loaded = load(ModelSpec(str(tiny["segformer"]), task="image-segmentation"))
    assert type(loaded.model).__name__ == "SegformerForSemanticSegmentation"
    listing = tmp_path / "images.txt"
    listing.write_text("\n".join(images) + "\n")
    out = tmp_path / "masks.jsonl"
    args = ["run", str(tiny["segformer"]), "--task", "image-segmentation", "-i", str(listing)]
    result = CliRunner().invoke(cli, [*args, "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    plain = pipeline("image-segmentation", model=str(tiny["segformer"]), device="cpu")
    for row, path in zip(rows, images, strict=True):
        want = plain(Image.open(path).convert("RGB"))
        assert [s["label"] for s in row["result"]] == [s["label"] for s in want]
        for got, reference in zip(row["result"], want, strict=True):
            assert got["mask"]["size"] == list(reference["mask"].size)
            assert np.array_equal(_decoded_mask(got["mask"]), np.asarray(reference["mask"]))


def test_speech_recognition_equals_the_plain_pipeline_one_clip_or_many(tiny, clips):
    """Before, a single clip failed: the pipeline took "raw" out of the one input dict
    that tether passed twice."""
    import soundfile
    from transformers import pipeline

    loaded = load(ModelSpec(str(tiny["wav2vec2-ctc"]), task="automatic-speech-recognition"))
    engine = Engine(loaded, "pipeline")
    plain = pipeline("automatic-speech-recognition", model=str(tiny["wav2vec2-ctc"]), device="cpu")
    want = []
    for path in clips:
        data, rate = soundfile.read(path, dtype="float32")
        want.append(plain({"raw": data, "sampling_rate": rate})["text"])
    assert all(want)
    assert [o.inference["text"] for o in engine.predict(clips)] == want
    assert [o.inference["text"] for o in engine.predict(clips[:1])] == want[:1]
