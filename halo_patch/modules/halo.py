"""HaloAttention (HaloNet, CVPR 2021): the module halo-patch installs by default, as a spec."""

from __future__ import annotations

from halo_patch.modules.spec import Arg, Channels, ModuleSpec

HALO = ModuleSpec(
    class_name="HaloAttention",
    file_stem="halo_attention",
    template="halo_attention.py",
    channels=Channels.SAME,
    branch_body="c2 = ch[f]\nargs = [c2, *args]\n",
    equivalent_bodies=(
        "c2 = ch[f]\nargs = [c2, *args]\n",
        "c2 = ch[f]\nargs = [ch[f], *args]\n",
        "args = [ch[f], *args]\nc2 = ch[f]\n",
        "c2 = ch[f]\nargs.insert(0, c2)\n",
    ),
    args=(Arg("block", 1, 64), Arg("halo", 0, 64), Arg("dim_head", 1, 4096), Arg("heads", 1, 4096)),
    required_args=2,
    default_args=(2, 1),
    args_usage=(
        "expected block,halo[,dim_head,heads] as integers: block 1 to 64, halo 0 to 64, "
        "dim_head and heads 1 to 4096; e.g. 2,1"
    ),
    defaults_note="block,halo[,dim_head,heads]",
)
