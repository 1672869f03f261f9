import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from huggingface_hub import ModelCard

from tether import CardError, CardInfo, ModelSpec, TrainingData, check_card, save
from tether.bundles.card import SECTIONS, section_status
from tether.cli.main import cli

FULL_INFO = CardInfo(
    license="apache-2.0",
    language=["en"],
    datasets=["imdb"],
    base_model="distilbert-base-uncased",
    intended_use="Sentiment of short English product reviews.",
    out_of_scope_use="Medical or legal decisions; languages other than English.",
    training_data=TrainingData(
        source="IMDB reviews", license="other", size=25000, class_balance={"neg": 9, "pos": 3}
    ),
    preprocessing="HTML tags stripped; reviews deduplicated.",
    hyperparameters={"optimizer": "AdamW", "lr": 2e-5, "epochs": 3},
    eval_results=[
        {
            "task_type": "text-classification",
            "dataset_type": "imdb",
            "dataset_name": "IMDB",
            "metric_type": "accuracy",
            "metric_value": 0.91,
        }
    ],
    bias_risks_limitations="Sarcasm is often misread.",
    examples="`tether run cls reviews.jsonl --output labels.jsonl`; demo notebook: reviews.ipynb",
    acknowledgments="Base model by the DistilBERT authors; IMDB data by Maas et al.",
    contact="ml-team@example.org",
)


def _cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_minilm_readme_reports_its_missing_sections(minilm_dir):
    result = check_card(minilm_dir / "README.md")
    assert not result.ok
    assert result.score < 0.8
    for title in (
        "How to load",
        "Intended use",
        "Training data",
        "Architecture and hyperparameters",
    ):
        assert result.sections[title] == "present"
    for title in (
        "Out-of-scope use",
        "Preprocessing",
        "Evaluation results",
        "Bias, risks and limitations",
        "Environment",
        "Acknowledgments",
        "Contact",
    ):
        assert result.sections[title] == "missing"
    assert result.metadata["license"] and result.metadata["datasets"]
    assert not result.metadata["base_model"] and not result.metadata["model-index"]
    assert "section: Contact (missing)" in result.missing
    assert "metadata: base_model" in result.missing


def test_card_check_cli_exit_code_follows_the_threshold(minilm_dir):
    failed = _cli("card", "check", minilm_dir / "README.md")
    assert failed.exit_code == 1
    assert "FAILED" in failed.output and "Bias, risks and limitations" in failed.output
    assert _cli("card", "check", minilm_dir, "--min-score", "0.4").exit_code == 0
    data = json.loads(_cli("card", "check", minilm_dir, "--json").output)
    assert data["ok"] is False and "metadata: model-index" in data["missing"]


def test_saved_card_with_full_info_scores_one_and_has_hub_metadata(tiny, tmp_path):
    spec = ModelSpec(str(tiny["distilbert-cls"]), model_class="AutoModelForSequenceClassification")
    bundle = save(spec, tmp_path / "cls", card=FULL_INFO)
    result = check_card(bundle)
    assert result.score == 1.0, result.format()
    data = ModelCard.load(bundle / "README.md").data.to_dict()
    assert data["pipeline_tag"] == "text-classification"
    assert data["library_name"] == "transformers"
    assert data["base_model"] == "distilbert-base-uncased"
    assert data["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.91
    text = (bundle / "README.md").read_text()
    assert "| pos | 3 | 25.0% |" in text  # class balance
    assert "negative, positive" in text  # labels from the config
    assert "TODO" not in text


def test_saved_card_without_info_marks_todos_and_names_trust_remote_code(tiny, tmp_path):
    spec = ModelSpec(str(tiny["custom"]), model_class="AutoModel", trust_remote_code=True)
    bundle = save(spec, tmp_path / "custom")
    text = (bundle / "README.md").read_text()
    assert "trust_remote_code=True" in text
    assert "modeling_tiny_custom.py" in text
    assert 'load_bundle("path/to/this/bundle", trust_remote_code=True)' in text
    assert "tether verify path/to/this/bundle --trust-remote-code" in text
    assert '"trust_remote_code": false' in text  # the manifest never trusts itself
    assert "transformers |" in text  # environment table
    result = check_card(bundle)
    assert not result.ok
    for title in (
        "Intended use",
        "Out-of-scope use",
        "Bias, risks and limitations",
        "Examples and demos",
        "Acknowledgments",
        "Contact",
    ):
        assert result.sections[title] == "todo"
    assert result.sections["How to load"] == "present"
    assert result.sections["Environment"] == "present"


def test_headings_inside_code_blocks_do_not_count():
    text = "# Model\n\n```python\n# Evaluation\nprint(1)\n```\n\n## Contact\n\nme@example.org\n"
    status = section_status(text)
    assert status["Evaluation results"] == "missing"
    assert status["Contact"] == "present"


def test_placeholder_only_sections_count_as_todo_but_words_containing_todo_do_not():
    text = (
        "## Contact\n\n[More Information Needed]\n\n"
        "## Bias, risks and limitations\n\n<!-- fill me -->\n**TODO**: write this\n\n"
        "## Intended use\n\nPosting summaries to Mastodon.\n"
    )
    status = section_status(text)
    assert status["Contact"] == "todo"
    assert status["Bias, risks and limitations"] == "todo"
    assert status["Intended use"] == "present"


def test_every_section_is_recognised_by_its_own_title():
    text = "\n\n".join(f"## {s.title}\n\nSomething real." for s in SECTIONS)
    assert set(section_status(text).values()) == {"present"}


def test_card_info_reads_yaml_and_rejects_unknown_fields(tmp_path):
    path = tmp_path / "card.yaml"
    path.write_text("license: mit\nlanguage: en\ntraining_data:\n  source: logs\n  size: 10\n")
    info = CardInfo.from_file(path)
    assert info.language == ["en"] and info.training_data.size == 10
    path.write_text("licence: mit\n")
    with pytest.raises(CardError, match="licence"):
        CardInfo.from_file(path)


def test_check_card_without_a_readme_says_what_to_do(tmp_path):
    with pytest.raises(CardError) as info:
        check_card(tmp_path)
    assert "tether save" in info.value.hint


def test_examples_demos_and_acknowledgments_are_on_the_checklist():
    text = "## Contact\n\nme@example.org\n"
    status = section_status(text)
    assert status["Examples and demos"] == status["Acknowledgments"] == "missing"
    text += "\n## Demo\n\nA Space: acme/demo\n\n## Acknowledgements\n\nThanks to the data team.\n"
    status = section_status(text)
    assert status["Examples and demos"] == status["Acknowledgments"] == "present"


DOCS = Path(__file__).resolve().parents[2] / "docs" / "bundles.md"


def test_the_docs_example_card_scores_what_the_docs_claim(tiny, tmp_path):
    """docs/bundles.md gives a card.yaml and says a card saved with every field scores 1.00."""
    import re

    text = DOCS.read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert example is not None
    (tmp_path / "card.yaml").write_text(example.group(1))
    claimed = re.search(r"saved with every\s+field.{0,80}?scores (\d\.\d\d)", text, re.S)
    assert claimed is not None
    spec = ModelSpec(str(tiny["distilbert-cls"]), model_class="AutoModelForSequenceClassification")
    bundle = save(spec, tmp_path / "b", card=CardInfo.from_file(tmp_path / "card.yaml"))
    result = check_card(bundle)
    assert f"{result.score:.2f}" == claimed.group(1), result.format()
