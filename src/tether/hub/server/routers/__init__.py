"""One APIRouter per resource; ``app.py`` includes them in this order.

The order matters where two paths could match the same request: the typed file routes
(``/datasets/...``) come before a model's (``/{namespace}/{name}/...``), and the API
routes before the file routes.
"""
