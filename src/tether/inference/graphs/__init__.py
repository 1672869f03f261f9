"""Building what an optimised model runs: an ONNX graph of a task's forward pass (exported,
fused, maybe smoothed and int8-quantised), or the original module under autocast.

``build_subject`` is the one recipe: ``tether optimize`` verifies and ships its result,
and ``tether compare --transform exact|bf16|int8`` compares the very same candidate, so a
compare result predicts what the optimiser would verify. Verifying and writing bundles
lives above the parity tool, in ``tether.optimization``.
"""
