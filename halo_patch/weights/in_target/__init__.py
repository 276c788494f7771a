"""The part of `halo-patch weights` that runs inside the Python that owns the patched target.

Copied, as a package, into a temp dir and started with the target's interpreter (as verify's checks
are), so every module here imports only the standard library, torch and ultralytics, lazily inside
functions, plus its siblings by relative import; never halo_patch; and stays Python 3.8 syntax.

`main` speaks the protocol; `load` reads the source checkpoint (classes of a HaloAttention file that
is gone or is the tutorial's are read as the installed class); `carry` builds the HaloAttention
model, moves every tensor to its new index and writes the checkpoint.
"""
