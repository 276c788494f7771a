"""`halo-patch verify`: prove, in the target's own Python, that the patched Ultralytics works.

Two halves, split by where they run:

- here, in halo-patch's Python, without torch: `options` (flags -> Options, the planned Steps),
  `models` (which HaloAttention yamls apply wrote, and the model names to build),
  `interpreter` (the Python that owns the target, its environment, a safe temp dir),
  `child` (copies `in_target` into the temp dir, runs it, follows its protocol),
  `runner` (the patch-status step, then the child, under a progress display),
  `table` (the final table, the verdict line, the --json report);
- `in_target/`: the checks themselves, run by the target's interpreter. They are copied there, so
  they import only the standard library, torch and ultralytics, and keep Python 3.8 syntax (see
  in_target/__init__.py).

commands/verify.py is the thin verb that wires these together.
"""
