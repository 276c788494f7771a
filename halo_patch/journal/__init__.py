"""The only writer: commit a plan's file steps as one crash-safe transaction (see transaction.py).

One module per job: `state` (the state dir's records and their validation), `files` (atomic,
confined file operations), `lock` (one lock per real tree), `transaction` (commit, rollback,
recover). The state dir `<root>/.halo-patch/` sits beside the package, never inside the tree
Ultralytics globs. Deletion never follows a symlink.
"""

from halo_patch.journal.files import atomic_write, pycache_of, sha256
from halo_patch.journal.lock import LOCK_WAIT_ENV, lock_wait, locked
from halo_patch.journal.state import (
    Action,
    Manifest,
    ManifestEntry,
    Op,
    Pending,
    confine,
    load_manifest,
    load_pending,
    read_blob,
    trusted_entries,
)
from halo_patch.journal.transaction import ChangeSet, FileEdit, commit, describe_failure, recover, remove_state_dir

__all__ = [
    "LOCK_WAIT_ENV",
    "Action",
    "ChangeSet",
    "FileEdit",
    "Manifest",
    "ManifestEntry",
    "Op",
    "Pending",
    "atomic_write",
    "commit",
    "confine",
    "describe_failure",
    "load_manifest",
    "load_pending",
    "lock_wait",
    "locked",
    "pycache_of",
    "read_blob",
    "recover",
    "remove_state_dir",
    "sha256",
    "trusted_entries",
]
