"""Explore a dataset with embeddings: cluster it, compare embedding models on it, map it.

scikit-learn (the ``explore`` extra) is imported only inside this package, and only
when a function needs it.
"""
