"""``pbfm-webpage bench``: latency, onboarding and fan-out against the transport floor, and a chaos run.

One module per figure; ``run.py`` starts one local stack, measures every figure beside its floor,
and writes ``results/<date>.json``, a table and an SVG plot.
"""
