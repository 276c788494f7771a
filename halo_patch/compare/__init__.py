"""`halo-patch compare`: train the base and its HaloAttention variants over paired seeds, fairly, and report.

Installer side (no torch): options, the run matrix, the manifest, statistics, the report. What runs in the
target's own Python lives in `in_target` and is started one process per job (halo_patch.compare.jobs).
"""
