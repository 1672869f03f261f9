"""Deterministic tiny models built from configs, so tests run offline and fast.

Each builder writes a real ``save_pretrained`` directory (config, safetensors weights,
tokenizer) that loads through the ordinary transformers path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a model that needs its own code must be trusted explicitly",
    "embeddings turn text into vectors of numbers",
    "hello world, this is a tiny test sentence.",
    "Paris is the capital of France and Berlin is the capital of Germany",
    "numbers like 42 and 3.14 appear in text too",
    "tether keeps the model you run exactly the model you tested",
    "short",
    "good great excellent happy bad awful terrible sad",
] * 4

SIZE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
CUSTOM_CODE = '''"""A custom-code BERT: layer 1 uses ReLU in its feed-forward block, not GELU."""
import torch
from transformers import BertConfig, BertModel


class TinyCustomConfig(BertConfig):
    model_type = "bert"


class TinyCustomModel(BertModel):
    config_class = TinyCustomConfig

    def __init__(self, config):
        super().__init__(config)
        # Same weights as BertModel, different forward: the trap the loader guards.
        self.encoder.layer[1].intermediate.intermediate_act_fn = torch.nn.ReLU()
'''


def _wordpiece_tokenizer(out: Path, lowercase: bool = True) -> int:
    from transformers import BertTokenizerFast

    words = sorted({w.strip(".,").lower() for line in CORPUS for w in line.split()})
    chars = sorted({c for line in CORPUS for c in line.lower() if not c.isspace()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *[f"##{c}" for c in chars]]
    vocab += [w for w in words if w not in vocab]
    vocab_file = out / "vocab.txt"
    out.mkdir(parents=True, exist_ok=True)
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=lowercase)
    tok.model_max_length = 128
    tok.save_pretrained(out)
    return len(tok)


def _byte_bpe_tokenizer(out: Path, kind: str) -> int:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast, RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    specials = (
        ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] if kind == "roberta" else ["<|endoftext|>"]
    )
    bpe.train_from_iterator(CORPUS, vocab_size=400, min_frequency=1, special_tokens=specials)
    out.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(out))
    if kind == "roberta":
        tok = RobertaTokenizerFast(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"))
    else:
        tok = GPT2TokenizerFast(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"))
        tok.pad_token = tok.eos_token
    tok.model_max_length = 128
    tok.save_pretrained(out)
    return len(tok)


def _unigram_tokenizer(out: Path) -> int:
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import XLMRobertaTokenizerFast

    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(
        CORPUS,
        vocab_size=200,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        unk_token="<unk>",
    )
    tok = XLMRobertaTokenizerFast(tokenizer_object=sp._tokenizer)
    tok.model_max_length = 128
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out)
    return len(tok)


def build_bert(out: Path, head: str = "base") -> Path:
    from transformers import BertConfig, BertForMaskedLM, BertModel

    vocab = _wordpiece_tokenizer(out)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab, intermediate_size=37, max_position_embeddings=128, **SIZE)
    model = (BertForMaskedLM if head == "mlm" else BertModel)(config).eval()
    model.save_pretrained(out)
    return out


def build_visualbert(out: Path) -> Path:
    """Text tokens and image regions in one sequence: a dict input whose fields differ
    in length (VisualBERT concatenates ``input_ids`` and ``visual_embeds``)."""
    from transformers import VisualBertConfig, VisualBertModel

    vocab = _wordpiece_tokenizer(out)
    torch.manual_seed(7)
    config = VisualBertConfig(
        vocab_size=vocab,
        intermediate_size=37,
        max_position_embeddings=128,
        visual_embedding_dim=16,
        **SIZE,
    )
    VisualBertModel(config).eval().save_pretrained(out)
    return out


def build_vit(out: Path) -> Path:
    """An image classifier with its image processor and no tokenizer."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(11)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        intermediate_size=37,
        id2label={0: "dark", 1: "light"},
        label2id={"dark": 0, "light": 1},
        **SIZE,
    )
    ViTForImageClassification(config).eval().save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def build_wav2vec2(out: Path) -> Path:
    """An audio classifier with its feature extractor (16 kHz) and no tokenizer."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
    )

    torch.manual_seed(13)
    config = Wav2Vec2Config(
        vocab_size=12,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        num_feat_extract_layers=2,
        classifier_proj_size=16,
        id2label={0: "low", 1: "high"},
        label2id={"low": 0, "high": 1},
    )
    Wav2Vec2ForSequenceClassification(config).eval().save_pretrained(out)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, return_attention_mask=True
    ).save_pretrained(out)
    return out


def build_yolos(out: Path) -> Path:
    """An object detector (YOLOS: a ViT with detection tokens) with its image processor."""
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessor

    torch.manual_seed(17)
    config = YolosConfig(
        image_size=[32, 32],
        patch_size=8,
        num_detection_tokens=5,
        intermediate_size=37,
        id2label={0: "cat", 1: "dog"},
        label2id={"cat": 0, "dog": 1},
        **SIZE,
    )
    YolosForObjectDetection(config).eval().save_pretrained(out)
    YolosImageProcessor(size={"shortest_edge": 32, "longest_edge": 32}).save_pretrained(out)
    return out


def build_segformer(out: Path) -> Path:
    """A semantic-segmentation model (SegFormer), which image-segmentation's first class,
    AutoModelForImageSegmentation, does not cover."""
    from transformers import (
        SegformerConfig,
        SegformerForSemanticSegmentation,
        SegformerImageProcessor,
    )

    torch.manual_seed(19)
    config = SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[16, 32],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=32,
        id2label={0: "sky", 1: "ground"},
        label2id={"sky": 0, "ground": 1},
    )
    SegformerForSemanticSegmentation(config).eval().save_pretrained(out)
    SegformerImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def build_wav2vec2_ctc(out: Path) -> Path:
    """A speech recogniser (Wav2Vec2 + CTC) with a processor: feature extractor + tokenizer."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    torch.manual_seed(23)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate("abcdefgh")}}
    (out / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(out / "vocab.json"), pad_token="<pad>", unk_token="<unk>", word_delimiter_token="|"
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, return_attention_mask=True
    )
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        pad_token_id=0,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        num_feat_extract_layers=2,
    )
    Wav2Vec2ForCTC(config).eval().save_pretrained(out)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out)
    return out


def build_clip(out: Path) -> Path:
    """Text and image towers in one space, with a multimodal processor (tokenizer and
    image processor): zero-shot image classification, text and image embeddings."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizerFast,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    out.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    merges = ["t h", "th e</w>", "q u"]
    for merge in merges:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizerFast(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"))
    torch.manual_seed(17)
    end = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": end,
            "pad_token_id": end,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).eval().save_pretrained(out)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def build_roberta(out: Path) -> Path:
    from transformers import RobertaConfig, RobertaModel

    vocab = _byte_bpe_tokenizer(out, "roberta")
    torch.manual_seed(1)
    config = RobertaConfig(
        vocab_size=vocab,
        intermediate_size=37,
        max_position_embeddings=130,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **SIZE,
    )
    RobertaModel(config).eval().save_pretrained(out)
    return out


def build_xlmr(out: Path) -> Path:
    """XLM-R saved with its masked-LM head (logits are vocabulary-sized)."""
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    vocab = _unigram_tokenizer(out)
    torch.manual_seed(2)
    config = XLMRobertaConfig(
        vocab_size=vocab,
        intermediate_size=37,
        max_position_embeddings=130,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **SIZE,
    )
    XLMRobertaForMaskedLM(config).eval().save_pretrained(out)
    return out


def build_distilbert(out: Path) -> Path:
    """DistilBERT with a 2-label sequence-classification head."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    vocab = _wordpiece_tokenizer(out)
    torch.manual_seed(3)
    config = DistilBertConfig(
        vocab_size=vocab,
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=37,
        max_position_embeddings=128,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    DistilBertForSequenceClassification(config).eval().save_pretrained(out)
    return out


def build_gpt2(out: Path) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    vocab = _byte_bpe_tokenizer(out, "gpt2")
    torch.manual_seed(4)
    config = GPT2Config(
        vocab_size=vocab,
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=128,
        bos_token_id=0,
        eos_token_id=0,
    )
    GPT2LMHeadModel(config).eval().save_pretrained(out)
    return out


def build_llama(out: Path) -> Path:
    """A Llama decoder (transformers ``LlamaModel``), grouped-query attention, RoPE."""
    from transformers import LlamaConfig, LlamaModel

    vocab = _byte_bpe_tokenizer(out, "gpt2")
    torch.manual_seed(6)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    model = LlamaModel(config).eval()
    with torch.no_grad():  # RMSNorm weights start at 1; make them count in the port
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    model.save_pretrained(out)
    return out


def build_custom(out: Path) -> Path:
    """A custom-code model (auto_map) whose forward differs from its built-in base class."""
    import importlib.util

    vocab = _wordpiece_tokenizer(out)
    (out / "modeling_tiny_custom.py").write_text(CUSTOM_CODE, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(
        "modeling_tiny_custom", out / "modeling_tiny_custom.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(5)
    config = module.TinyCustomConfig(
        vocab_size=vocab, intermediate_size=37, max_position_embeddings=128, **SIZE
    )
    config.auto_map = {
        "AutoConfig": "modeling_tiny_custom.TinyCustomConfig",
        "AutoModel": "modeling_tiny_custom.TinyCustomModel",
    }
    module.TinyCustomModel(config).eval().save_pretrained(out)
    # save_pretrained copies the code only for classes loaded as remote code; keep it.
    assert (out / "modeling_tiny_custom.py").is_file()
    data = json.loads((out / "config.json").read_text())
    assert data.get("auto_map"), data
    return out


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "bert": build_bert,
    "bert-mlm": lambda out: build_bert(out, head="mlm"),
    "roberta": build_roberta,
    "xlmr-mlm": build_xlmr,
    "distilbert-cls": build_distilbert,
    "gpt2": build_gpt2,
    "llama": build_llama,
    "custom": build_custom,
    "visualbert": build_visualbert,
    "vit": build_vit,
    "wav2vec2": build_wav2vec2,
    "wav2vec2-ctc": build_wav2vec2_ctc,
    "yolos": build_yolos,
    "segformer": build_segformer,
    "clip": build_clip,
}


def build_all(root: Path) -> dict[str, Path]:
    return {name: builder(root / name) for name, builder in BUILDERS.items()}
