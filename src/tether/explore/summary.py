"""What each cluster is about: its size, the texts nearest its centroid, and the terms
that set it apart from the other clusters (class-based TF-IDF: a cluster's term
frequencies weighted by how rare the term is across clusters)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tether.errors import require_extra

REPRESENTATIVES = 3
TERMS = 8
#: Representative texts are cut to this many characters in the summary.
TEXT_CHARS = 200


@dataclass
class ClusterSummary:
    cluster: int
    size: int
    representatives: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    top_label: str | None = None  # the most common label, when labels were given

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(
    texts: list[str],
    assignments: Any,
    distances: Any,
    labels: list[str] | None = None,
    *,
    representatives: int = REPRESENTATIVES,
    terms: int = TERMS,
) -> list[ClusterSummary]:
    """One summary per cluster id, in id order (HDBSCAN's noise, -1, first if any)."""
    from collections import Counter

    import numpy as np

    assignments = np.asarray(assignments)
    distances = np.asarray(distances, dtype=np.float64)
    ids = sorted(set(assignments.tolist()))
    distinctive = distinctive_terms(texts, assignments, ids, terms)
    out = []
    for cluster in ids:
        members = np.flatnonzero(assignments == cluster)
        order = members[np.argsort(np.nan_to_num(distances[members], nan=np.inf), kind="stable")]
        top_label = None
        if labels is not None:
            top_label = Counter(labels[i] for i in members).most_common(1)[0][0]
        out.append(
            ClusterSummary(
                cluster=int(cluster),
                size=len(members),
                representatives=[_cut(texts[i]) for i in order[:representatives]],
                terms=distinctive.get(cluster, []),
                top_label=top_label,
            )
        )
    return out


def distinctive_terms(
    texts: list[str], assignments: Any, ids: list[int], top: int
) -> dict[int, list[str]]:
    import numpy as np

    require_extra("sklearn", "explore")
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{2,}\b")
    try:
        counts = vectorizer.fit_transform(texts)  # (n, vocabulary), sparse
    except ValueError:  # no word at all (numbers, punctuation, stop words only)
        return {}
    vocabulary = vectorizer.get_feature_names_out()
    per_cluster = np.vstack(
        [np.asarray(counts[np.flatnonzero(assignments == c)].sum(axis=0)) for c in ids]
    ).astype(np.float64)  # (clusters, vocabulary)
    words = per_cluster.sum(axis=1, keepdims=True)
    tf = per_cluster / np.maximum(words, 1.0)
    idf = np.log(1.0 + words.mean() / np.maximum(per_cluster.sum(axis=0), 1.0))
    scores = tf * idf
    result = {}
    for row, cluster in enumerate(ids):
        order = np.argsort(-scores[row], kind="stable")[:top]
        result[cluster] = [str(vocabulary[j]) for j in order if per_cluster[row, j] > 0]
    return result


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
