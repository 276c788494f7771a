"""`python fault_cli.py SPEC LOG ARGS...`: the halo-patch CLI with fault points armed (see faults.py)."""

import sys

from faults import Faults

from halo_patch.journal import files

files.checkpoint = Faults(sys.argv[1], sys.argv[2] or None)
sys.argv = ["halo-patch", *sys.argv[3:]]

from halo_patch.cli import main  # noqa: E402

main()
