"""2-D maps of embeddings: a PNG (matplotlib, the ``plot`` extra) and a self-contained
interactive HTML file (inline SVG and a few lines of inline script, nothing fetched
from a network; hovering a point shows its text).

PCA is the default projection (deterministic, linear, always available); UMAP keeps
local neighbourhoods better and is used with ``projection="umap"`` (the ``umap`` extra).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from tether.bundles import atomic
from tether.errors import SpecError, require_extra

PROJECTIONS = ("pca", "umap")
#: Points drawn at most; above, a seeded sample (a map of 10^6 dots says no more).
MAX_POINTS = 20_000
#: Characters of each text kept for the hover.
HOVER_CHARS = 300
_PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363",
]  # fmt: skip


def project(vectors: Any, projection: str = "pca", seed: int = 0) -> Any:
    """(n, 2) coordinates of ``vectors`` (n, dim)."""
    import numpy as np

    if projection not in PROJECTIONS:
        raise SpecError(
            f"Unknown projection {projection!r}.", f"Pass projection= one of {PROJECTIONS}."
        )
    vectors = np.asarray(vectors, dtype=np.float32)
    if projection == "umap":
        require_extra("umap", "umap")
        import umap

        return umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(vectors)
    require_extra("sklearn", "explore")
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(vectors)


def write_maps(
    vectors: Any,
    assignments: Any,
    texts: list[str],
    labels: list[str] | None,
    output: str,
    *,
    seed: int = 0,
    projection: str = "pca",
) -> list[str]:
    """Write ``OUTPUT.map.png`` and ``OUTPUT.map.html``; returns their paths."""
    import numpy as np

    points = np.arange(len(vectors))
    if len(points) > MAX_POINTS:
        points = np.sort(np.random.default_rng(seed).choice(points, MAX_POINTS, replace=False))
    xy = project(np.asarray(vectors)[points], projection, seed)
    clusters = [str(c) for c in np.asarray(assignments)[points].tolist()]
    chosen_texts = [texts[i] for i in points]
    chosen_labels = [labels[i] for i in points] if labels is not None else None
    title = f"{projection.upper()} map of {len(vectors)} records"
    if len(points) < len(vectors):
        title += f" ({len(points)} drawn)"
    png, page = f"{output}.map.png", f"{output}.map.html"
    write_png(xy, clusters, chosen_labels, png, title)
    atomic.write_text(Path(page), render_html(xy, clusters, chosen_texts, chosen_labels, title))
    return [png, page]


def _colours(values: list[str]) -> dict[str, str]:
    names = sorted(set(values), key=lambda v: (not v.lstrip("-").isdigit(), _num(v), v))
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}


def _num(value: str) -> int:
    return int(value) if value.lstrip("-").isdigit() else 0


def write_png(
    xy: Any, clusters: list[str], labels: list[str] | None, path: str, title: str
) -> None:
    """One panel coloured by cluster, and one by label when labels are given."""
    import numpy as np

    require_extra("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("cluster", clusters)] + ([("label", labels)] if labels is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 6), squeeze=False)
    for ax, (name, values) in zip(axes[0], panels, strict=True):
        colours = _colours(values)
        for value, colour in colours.items():
            mask = np.array([v == value for v in values])
            ax.scatter(xy[mask, 0], xy[mask, 1], s=6, color=colour, label=value, alpha=0.7)
        ax.set_title(f"{title}, by {name}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if len(colours) <= 20:
            ax.legend(fontsize=7, markerscale=2, loc="best", frameon=False)
    fig.tight_layout()
    tmp = Path(path).with_name(Path(path).name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    atomic.publish_file(tmp, Path(path))


def render_html(
    xy: Any, clusters: list[str], texts: list[str], labels: list[str] | None, title: str
) -> str:
    """A standalone page: an SVG scatter whose points carry their text (shown on hover)
    and a switch between colouring by cluster and by label. No external resources."""
    import numpy as np

    xy = np.asarray(xy, dtype=np.float64)
    size, pad = 720.0, 20.0
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    scaled = pad + (xy - low) / span * (size - 2 * pad)
    by_cluster = _colours(clusters)
    by_label = _colours(labels) if labels is not None else {}
    circles = []
    for i, (x, y) in enumerate(scaled):
        text = " ".join(texts[i].split())[:HOVER_CHARS]
        label = labels[i] if labels is not None else ""
        hover = f"cluster {clusters[i]}" + (f" | label {label}" if labels is not None else "")
        circles.append(
            f'<circle cx="{x:.1f}" cy="{size - y:.1f}" r="3" fill="{by_cluster[clusters[i]]}" '
            f'data-c="{by_cluster[clusters[i]]}" data-l="{by_label.get(label, "")}" '
            f'data-t="{html.escape(hover + ": " + text)}"></circle>'
        )
    legend = {"cluster": by_cluster, "label": by_label}
    switch = (
        '<label><input type="radio" name="by" value="c" checked> by cluster</label> '
        '<label><input type="radio" name="by" value="l"> by label</label>'
        if labels is not None
        else ""
    )
    return _PAGE.format(
        title=html.escape(title),
        switch=switch,
        size=int(size),
        circles="\n".join(circles),
        legend=html.escape(json.dumps(legend)),
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px sans-serif; margin: 1em; }}
svg {{ border: 1px solid #ccc; background: #fff; }}
circle {{ opacity: .75; }} circle:hover {{ stroke: #000; stroke-width: 1.5; opacity: 1; }}
#tip {{ position: fixed; max-width: 420px; background: #222; color: #fff; padding: 6px 8px;
  border-radius: 4px; font-size: 12px; pointer-events: none; display: none; }}
#legend span {{ display: inline-block; margin: 2px 8px 2px 0; }}
#legend i {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px; }}
</style></head><body>
<h3>{title}</h3>
<div>{switch}</div>
<div id="legend" data-legend="{legend}"></div>
<svg id="map" width="{size}" height="{size}" viewBox="0 0 {size} {size}">
{circles}
</svg>
<div id="tip"></div>
<script>
const tip = document.getElementById("tip");
const legend = JSON.parse(document.getElementById("legend").dataset.legend);
function drawLegend(by) {{
  const box = document.getElementById("legend"); box.textContent = "";
  for (const [name, colour] of Object.entries(legend[by === "c" ? "cluster" : "label"])) {{
    const s = document.createElement("span"); const i = document.createElement("i");
    i.style.background = colour; s.append(i, name); box.append(s);
  }}
}}
document.querySelectorAll("circle").forEach(c => {{
  c.addEventListener("mousemove", e => {{
    tip.textContent = c.dataset.t; tip.style.display = "block";
    tip.style.left = (e.clientX + 12) + "px"; tip.style.top = (e.clientY + 12) + "px";
  }});
  c.addEventListener("mouseleave", () => {{ tip.style.display = "none"; }});
}});
document.querySelectorAll("input[name=by]").forEach(r => r.addEventListener("change", () => {{
  document.querySelectorAll("circle").forEach(c => c.setAttribute("fill", c.dataset[r.value]));
  drawLegend(r.value);
}}));
drawLegend("c");
</script></body></html>
"""
