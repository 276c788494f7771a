"""`halo-patch weights`: carry a checkpoint's tensors into the HaloAttention model apply wrote.

`yamls` finds the yaml (only one apply wrote and would write again, recomputed by the yaml planner)
and takes the planner's index map from it; `child` runs `in_target` in the target's own Python with
that map as JSON; `output` puts the checkpoint in place; `table` reports. No torch is imported here.
"""
