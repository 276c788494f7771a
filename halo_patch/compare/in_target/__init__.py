"""Code that `halo-patch compare` runs in the target's own Python (stdlib + torch + Ultralytics + numpy/matplotlib).

Copied into a temp dir as `halo_compare_jobs` and started with `python -c LAUNCHER <dir> <config.json>`,
so nothing of halo-patch shadows what the target imports. Python 3.8 syntax, imports inside functions.
"""
