"""The checks of `halo-patch verify` that run inside the Python that owns the patched target.

Everything in this folder is copied, as a package, into verify's temp dir and run there with the
target's interpreter (`python -c LAUNCHER <dir> <config>`), which need not have halo-patch
installed and may be older than halo-patch's own Python. So every module here:

- imports only the standard library, torch and ultralytics (and what ultralytics itself brings:
  numpy, PIL; onnxruntime only for `--export onnx`), plus its siblings by relative import;
  never halo_patch;
- stays valid Python 3.8 syntax (the oldest Python a YOLO11 release supports):
  `from __future__ import annotations`, no `match`, no `X | Y` outside annotations, no
  `str.removeprefix`, no parenthesised context managers.

tests/test_verify_layout.py checks both rules.

Layout: `main` speaks the protocol (one JSON line per event on the original stdout) and runs the
steps in the order asked; `steps` registers every step by name with the step it needs;
one module per step (`import_check`, `build`, `forward`, `train_step`, `train`, `predict`,
`checkpoint`, `export`, `onnx_run`); `heads` knows what each task's head returns and
`batches` makes the synthetic inputs; `common` holds the shared state and helpers.
"""
