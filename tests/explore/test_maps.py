"""Maps: a PNG, and a self-contained HTML page whose points show their text on hover
(checked in a real headless Chromium)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from browser import browser_page
from explore_data import write_jsonl
from tether import ModelSpec, Records, SpecError, cluster, load
from tether.explore.maps import project, render_html


@pytest.fixture(scope="module")
def mapped(tiny, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("maps")
    data = tmp / "in.jsonl"
    rows = write_jsonl(data, bad=False)
    rows.append({"id": "x", "text": "<script>alert(1)</script> & fox", "label": "animals"})
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    result = cluster(
        loaded, Records(str(data), label_column="label"), str(tmp / "out.parquet"), k=3, maps=True
    )
    return result, rows


def test_maps_are_written_beside_the_output(mapped):
    result, _ = mapped
    png, page = result.maps
    assert png.endswith(".map.png") and page.endswith(".map.html")
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[:2] == (660, 1430)  # two panels: cluster, label
    text = Path(page).read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "src=" not in text
    assert "<script>alert(1)</script>" not in text  # texts are escaped, not markup


def test_hovering_a_point_shows_its_text_in_a_real_browser(mapped, tmp_path):
    result, rows = mapped
    with browser_page() as page:
        page.goto(f"file://{result.maps[1]}")
        circles = page.locator("circle")
        assert circles.count() == len(rows)
        last = circles.nth(len(rows) - 1)
        last.hover(force=True)
        tip = page.locator("#tip")
        tip.wait_for(state="visible")
        assert "<script>alert(1)</script> & fox" in tip.inner_text()
        assert "label animals" in tip.inner_text()
        before = last.get_attribute("fill")
        page.get_by_label("by label").check()
        after = last.get_attribute("fill")
        legend = page.locator("#legend").inner_text()
        assert "animals" in legend and "numbers" in legend
        page.screenshot(path=str(tmp_path / "map.png"))
    assert before != after or len({r["label"] for r in rows}) == 1
    assert (tmp_path / "map.png").stat().st_size > 1000


def test_pca_is_scikit_learns():
    from sklearn.decomposition import PCA

    vectors = np.random.default_rng(0).normal(size=(30, 8))
    np.testing.assert_allclose(
        project(vectors), PCA(n_components=2, random_state=0).fit_transform(vectors), atol=1e-5
    )
    with pytest.raises(SpecError, match="projection"):
        project(vectors, "tsne")


def test_an_unlabelled_page_has_no_label_switch():
    page = render_html(np.zeros((2, 2)), ["0", "1"], ["a", "b"], None, "t")
    assert "by label" not in page and page.count("<circle") == 2


@pytest.mark.slow
def test_umap_projection_when_installed():
    pytest.importorskip("umap")
    vectors = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    xy = project(vectors, "umap")
    assert xy.shape == (40, 2) and np.isfinite(xy).all()
