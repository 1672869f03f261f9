"""Bundles: saving a model so that it reloads identically or fails loudly.

``save`` (atomic, fingerprinted, with a model card), ``verify``, fingerprints and the
probe texts, model cards. What a manifest means for *loading* lives in
``tether.models.manifest``, below this package, because ``load()`` needs it.
"""
