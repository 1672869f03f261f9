"""Command-line commands, one module per feature; each exposes ``register(group)``.

``tether.cli.main`` calls every ``register`` so a feature's commands live beside nothing else.
"""
