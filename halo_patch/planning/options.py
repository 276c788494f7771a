"""What the user asked apply for: the options stop at the planner."""

from __future__ import annotations

from dataclasses import dataclass

from halo_patch.modules import DEFAULT, ModuleSpec
from halo_patch.planning.layout import Layout


@dataclass(frozen=True)
class ApplyOptions:
    """The apply flags (the CLI parses them; only the planner reads them)."""

    base: str = "yolo11"  # --base: a yaml name from the target's cfg/models/, or a path to the user's own yaml
    after: tuple[int, ...] = ()  # --after: insert after these layers; () = the default placement
    args: tuple[int, ...] = DEFAULT.default_args  # --args: the module's yaml arguments
    layout: Layout | None = Layout.ADDMODULES  # --layout (None: the layout the tree is patched with)
    adopt: bool = False  # --adopt: take over a hand-made (tutorial) install of the module
    module: ModuleSpec = DEFAULT  # what apply installs (a user's module file: `--module`)
    replace: int | None = None  # --replace: layer N's module and args become the module's (instead of --after)
