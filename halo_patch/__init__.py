"""halo-patch: add a module (HaloAttention by default) to an Ultralytics YOLO code base, exactly and reversibly.

Start at `halo_patch.modules`: the spec of what is installed. The data path, one layer each:
    target.py     find the Ultralytics tree (every path of it)      -> UltralyticsTarget
    planning/     compute every file change in memory (pure)        -> Plan (a frozen ChangeSet + report data)
    journal/      commit a ChangeSet as one crash-safe transaction (write-ahead journal, lock, rollback)
    footprint.py  what apply leaves, recognisable without the state dir (the one table of edits/files)
    tree_status.py compare a tree with the footprint table          -> StatusReport
    commands/     parse options, call, print
"""

__version__ = "0.1.0"
