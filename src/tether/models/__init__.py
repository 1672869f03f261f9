"""Models: the load recipe (ModelSpec), where a model comes from, what it is without
running it (inspect), and ``load()`` with its guards. Imports only errors/constants."""
