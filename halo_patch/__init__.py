"""halo-patch: add HaloAttention to an Ultralytics YOLO11 code base, exactly and reversibly.

The data path, one module per step:
    target.py  find the Ultralytics tree             -> UltralyticsTarget
    plan.py    compute every file change in memory   -> Plan (pure, no writes)
    journal.py commit a Plan as one transaction      -> Manifest (atomic writes, rollback)
    status.py  compare a tree with what apply writes -> StatusReport
"""

__version__ = "0.1.0"
