"""A self-hosted, Hugging Face–compatible hub (``tether hub serve``).

Nothing here imports the server's dependencies: ``tether.hub.server`` does, on demand.
"""
