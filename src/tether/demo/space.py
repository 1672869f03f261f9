"""``export_space``: a folder that runs the same demo as a Hugging Face Space: ``app.py``,
``requirements.txt``, a README with the Space's metadata, the model as a tether bundle
(so the Space loads exactly the model that was demonstrated) and the corpus, if any."""

from __future__ import annotations

import shutil
from pathlib import Path

from tether.bundles.save import save
from tether.errors import OutputError
from tether.models.loading import LoadedModel

APP_TEMPLATE = '''"""A Hugging Face Space: `tether demo` on the bundle in ./model (written by
`tether demo --export-space`). Run locally with `python app.py`."""

from pathlib import Path

from tether import load_bundle
from tether.demo.app import build_app, theme
from tether.demo.service import Corpus, DemoService

HERE = Path(__file__).resolve().parent
TASK = {task!r}
CORPUS = {corpus!r}  # a file beside this one, or None
TEXT_COLUMN = {text_column!r}

loaded = load_bundle(HERE / "model")
corpus = map_image = None
if CORPUS:
    from tether.explore.clustering import cluster_vectors
    from tether.explore.dataset import embed_dataset
    from tether.explore.maps import write_maps
    from tether.inference.records import Records

    data = embed_dataset(loaded, Records(str(HERE / CORPUS), text_column=TEXT_COLUMN))
    corpus = Corpus(data.texts, data.vectors)
    found = cluster_vectors(data.vectors, "auto")
    map_image = write_maps(
        data.vectors, found.assignments, data.texts, None, str(HERE / "corpus")
    )[0]
app = build_app(DemoService(loaded, TASK, corpus), map_image=map_image)

if __name__ == "__main__":
    app.launch(theme=theme())  # a Space sets GRADIO_SERVER_NAME/PORT for its container
'''

README_TEMPLATE = """---
title: {title}
emoji: 🔎
colorFrom: blue
colorTo: gray
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
pinned: false
---

# {title}

A `tether demo` of `{model}` (task: {task}), exported with `tether demo --export-space`.
The model is the tether bundle in `model/`: `tether verify model` checks that its files
are the ones that were demonstrated.{corpus_line}
"""

REQUIREMENTS = """# tether with its demo (gradio) and explore (scikit-learn, maps) extras.
tether[demo,explore,plot]
torch
"""


def export_space(
    loaded: LoadedModel,
    out_dir: str | Path,
    *,
    task: str,
    corpus: str | Path | None = None,
    text_column: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the Space folder ``out_dir``; returns its path.

    Raises:
        OutputError: ``out_dir`` exists and is not empty (pass overwrite=True).
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputError(
                f"{out} exists and is not empty.",
                "Pass overwrite=True to replace it.",
                path=str(out),
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    save(loaded, out / "model")
    corpus_name = None
    if corpus is not None:
        corpus_name = "corpus" + "".join(Path(corpus).suffixes)
        shutil.copyfile(corpus, out / corpus_name)
    model = loaded.model_id or str(loaded.path)
    (out / "app.py").write_text(
        APP_TEMPLATE.format(task=task, corpus=corpus_name, text_column=text_column),
        encoding="utf-8",
    )
    (out / "requirements.txt").write_text(REQUIREMENTS, encoding="utf-8")
    (out / "README.md").write_text(
        README_TEMPLATE.format(
            title=f"tether demo: {Path(model).name}",
            gradio_version=_gradio_version(),
            model=model,
            task=task,
            corpus_line=f" `{corpus_name}` is the corpus it searches and maps."
            if corpus_name
            else "",
        ),
        encoding="utf-8",
    )
    return out


def _gradio_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gradio")
    except PackageNotFoundError:
        return "6.31.0"  # the version the demo was written against
