"""Plan every file change of a run in memory (pure, frozen), for both verbs.

    layout.py   where things go in a tree (--layout, the module's path, line endings, labels)
    options.py  ApplyOptions: what the user asked apply for (the options stop at the planner)
    sources.py  the new bytes of each file apply writes (libcst transforms, the model yaml)
    apply.py    plan_apply: the edits in write order + the manifest to leave
    revert.py   plan_revert: what is recognisably ours, taken out (the manifest only sharpens it)
    plan.py     Plan: the journal's ChangeSet plus what the report shows (refusals, notes, findings)
"""
