"""Quality figures: how well clusters match labels, how well neighbours share labels,
and how much two models agree on who is whose neighbour.

Each figure is scikit-learn's own function (ARI, NMI, contingency matrix, nearest
neighbours) so a reader can recompute it; purity is the share of records in their
cluster's most common label.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tether.errors import require_extra

#: Neighbours used for k-NN label accuracy and for neighbour overlap between models.
KNN_K = 5
OVERLAP_K = 10


def label_agreement(labels: list[str], assignments: Any) -> dict[str, float]:
    """ARI, NMI and purity of cluster assignments against labels (noise counts as a cluster)."""
    import numpy as np

    require_extra("sklearn", "explore")
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from sklearn.metrics.cluster import contingency_matrix

    assignments = np.asarray(assignments)
    table = contingency_matrix(labels, assignments)
    return {
        "ari": float(adjusted_rand_score(labels, assignments)),
        "nmi": float(normalized_mutual_info_score(labels, assignments)),
        "purity": float(table.max(axis=0).sum() / len(assignments)),
    }


def neighbours(vectors: Any, k: int) -> Any:
    """(n, k) indices of each vector's k nearest others by cosine distance, nearest first,
    itself excluded."""
    import numpy as np

    require_extra("sklearn", "explore")
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(vectors) - 1)
    index = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(vectors)
    found = index.kneighbors(vectors, return_distance=False)
    own = np.arange(len(vectors))[:, None]
    # drop the point itself (not always column 0 when duplicates tie at distance 0)
    rows = [row[row != i][:k] for row, i in zip(found, own[:, 0], strict=True)]
    return np.stack(rows)


def knn_accuracy(vectors: Any, labels: list[str], k: int = KNN_K) -> float:
    """Leave-one-out k-nearest-neighbour label accuracy: the share of records whose k
    nearest others (cosine) vote for their own label (ties: the nearer label wins)."""
    near = neighbours(vectors, k)
    hits = 0
    for i, row in enumerate(near):
        votes = Counter(labels[j] for j in row)
        top = max(votes.values())
        winner = next(labels[j] for j in row if votes[labels[j]] == top)
        hits += winner == labels[i]
    return hits / len(labels)


def neighbour_overlap(near_a: Any, near_b: Any) -> float:
    """Mean share of each record's k nearest neighbours that two models have in common."""
    k = near_a.shape[1]
    shared = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(near_a, near_b, strict=True)]
    return sum(shared) / (k * len(shared))
