"""The dev kit: the simulated company, the fake billing API, the acceptance check, demo and bench.

It imports the pipeline; the pipeline never imports it (a test enforces this).
"""
