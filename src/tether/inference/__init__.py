"""Inference: tasks, token-budget batching, the engine, results, file readers/writers
and the local runner (``tether run``/``tether embed``)."""
