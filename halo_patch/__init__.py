"""halo-patch: add HaloAttention to an Ultralytics YOLO11 code base, exactly and reversibly.

The data path, one module per step:
    target.py  find the Ultralytics tree             -> UltralyticsTarget
    plan.py    compute every file change in memory   -> Plan (pure, no writes)
    journal.py commit steps as one crash-safe transaction (write-ahead journal, lock, rollback)
    journal_apply.py / journal_revert.py: a Plan -> journal steps; a revert planned from the tree
    footprint.py    what apply leaves, recognisable without the state dir (table of edits/files)
    tree_status.py  compare a tree with what apply writes -> StatusReport
"""

__version__ = "0.1.0"
