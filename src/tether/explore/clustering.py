"""Cluster vectors with scikit-learn: k-means, mini-batch k-means, or HDBSCAN.

``k="auto"`` fits k-means for each k in a range and keeps the one with the best
silhouette (ties: the smaller k). Distances are Euclidean to the cluster's centroid,
the quantity k-means minimises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tether.errors import InputError, SpecError, require_extra

METHODS = ("auto", "kmeans", "minibatch", "hdbscan")
#: Above this many records ``method="auto"`` uses mini-batch k-means: full k-means
#: costs n x k x dim per iteration and n_init restarts, minutes on a CPU at 10^5 records.
MINIBATCH_ABOVE = 50_000
#: ``k="auto"`` tries k in this range (inclusive), capped at records - 1.
K_RANGE = (2, 12)
#: Silhouette is O(n^2): above this many points it is computed on a seeded sample.
SILHOUETTE_SAMPLE = 10_000
NOISE = -1  # HDBSCAN's label for points in no cluster


@dataclass
class Clustering:
    """One cluster id and distance per vector, and what produced them."""

    assignments: Any  # (n,) int64; NOISE for HDBSCAN's unclustered points
    distances: Any  # (n,) float64; NaN for noise
    centroids: Any  # (clusters, dim)
    method: str
    k: int  # clusters found (noise not counted)
    seed: int
    silhouette_by_k: dict[int, float] = field(default_factory=dict)


def cluster_vectors(
    vectors: Any,
    k: int | str | None = 8,
    *,
    method: str = "auto",
    seed: int = 0,
    k_range: tuple[int, int] = K_RANGE,
    minibatch_above: int = MINIBATCH_ABOVE,
    min_cluster_size: int = 5,
) -> Clustering:
    """Cluster ``vectors`` (n, dim).

    Args:
        k: number of clusters, or ``"auto"`` (best silhouette over ``k_range``).
            Ignored by HDBSCAN, which finds its own number.
        method: ``auto`` (k-means, mini-batch above ``minibatch_above`` records),
            ``kmeans``, ``minibatch`` or ``hdbscan``.
        seed: random state of k-means and of the silhouette sample.
    Raises:
        SpecError: an unknown method, or k outside 2..records.
        InputError: fewer than 2 vectors.
    """
    import numpy as np

    if method not in METHODS:
        raise SpecError(
            f"Unknown clustering method {method!r}.", f"Pass method= one of {', '.join(METHODS)}."
        )
    n = len(vectors)
    if n < 2:
        raise InputError(
            f"Clustering needs at least 2 embedded records, got {n}.",
            "Check the errors file: most records may have failed.",
        )
    vectors = np.asarray(vectors, dtype=np.float32)
    if method == "hdbscan":
        return _hdbscan(vectors, seed, min_cluster_size)
    large = method == "auto" and n > minibatch_above
    chosen = "minibatch" if method == "minibatch" or large else "kmeans"
    if k == "auto":
        low, high = k_range[0], min(k_range[1], n - 1)
        if low < 2 or high < low:
            raise SpecError(
                f"k_range={k_range} leaves no k to try for {n} records.",
                "Pass k_range=(low, high) with 2 <= low <= high < records.",
                field="k",
            )
        scores: dict[int, float] = {}
        fits: dict[int, Any] = {}
        for candidate in range(low, high + 1):
            fits[candidate] = _kmeans(vectors, candidate, chosen, seed)
            score = silhouette(vectors, fits[candidate].labels_, seed)
            scores[candidate] = -1.0 if score is None else score  # undefined: never chosen
        best = max(scores, key=lambda c: (scores[c], -c))
        result = _from_kmeans(vectors, fits[best], chosen, seed)
        result.silhouette_by_k = scores
        return result
    if not isinstance(k, int) or isinstance(k, bool) or not 2 <= k <= n:
        raise SpecError(
            f"k must be a whole number from 2 to the number of records ({n}), or 'auto'; "
            f"got {k!r}.",
            "Pass k=8, or k='auto' to choose by silhouette.",
            field="k",
        )
    return _from_kmeans(vectors, _kmeans(vectors, k, chosen, seed), chosen, seed)


def _kmeans(vectors: Any, k: int, method: str, seed: int) -> Any:
    require_extra("sklearn", "explore")
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if method == "minibatch":
        return MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=4096, n_init=3).fit(
            vectors
        )
    return KMeans(n_clusters=k, random_state=seed, n_init="auto").fit(vectors)


def _from_kmeans(vectors: Any, fitted: Any, method: str, seed: int) -> Clustering:
    import numpy as np

    assignments = fitted.labels_.astype(np.int64)
    centroids = fitted.cluster_centers_
    distances = np.linalg.norm(vectors - centroids[assignments], axis=1).astype(np.float64)
    return Clustering(assignments, distances, centroids, method, len(centroids), seed)


def _hdbscan(vectors: Any, seed: int, min_cluster_size: int) -> Clustering:
    import numpy as np

    require_extra("sklearn", "explore")
    from sklearn.cluster import HDBSCAN

    fitted = HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit(vectors)
    assignments = fitted.labels_.astype(np.int64)
    found = sorted(set(assignments.tolist()) - {NOISE})
    dim = vectors.shape[1]
    centroids = (
        np.stack([vectors[assignments == c].mean(axis=0) for c in found])
        if found
        else np.zeros((0, dim), np.float32)
    )
    distances = np.full(len(vectors), np.nan)
    member = assignments != NOISE
    if found:
        distances[member] = np.linalg.norm(vectors[member] - centroids[assignments[member]], axis=1)
    return Clustering(assignments, distances, centroids, "hdbscan", len(found), seed)


def silhouette(vectors: Any, assignments: Any, seed: int = 0) -> float | None:
    """scikit-learn's silhouette score (Euclidean), noise points left out; on a seeded
    sample of ``SILHOUETTE_SAMPLE`` points above that size. None when undefined
    (fewer than 2 clusters, or every point its own cluster)."""
    import numpy as np

    require_extra("sklearn", "explore")
    from sklearn.metrics import silhouette_score

    assignments = np.asarray(assignments)
    keep = assignments != NOISE
    vectors, assignments = np.asarray(vectors)[keep], assignments[keep]
    clusters = len(set(assignments.tolist()))
    if not 2 <= clusters <= len(assignments) - 1:
        return None
    sample = SILHOUETTE_SAMPLE if len(assignments) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(vectors, assignments, sample_size=sample, random_state=seed))
