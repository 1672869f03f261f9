"""Parity: compare two implementations of a model (dtype, export, quantisation, port)
output by output and layer by layer, and name the first module where they part."""
