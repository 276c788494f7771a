"""A HaloAttention installed by hand the way the blog tutorial does it, written into a test tree.

TUTORIAL_MODULE is the widely copied module (the maths of benchmarks/blog_halo.py, without its
`fix_mask` switch): einops, the inverted padding mask, the divisibility assert. The install edits are
text edits of the test tree, as a person following the tutorial makes them.
"""

from __future__ import annotations

from pathlib import Path

import yaml

TUTORIAL_MODULE = '''\
import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import einsum, nn


def to(x):
    return {"device": x.device, "dtype": x.dtype}


def pair(x):
    return (x, x) if not isinstance(x, tuple) else x


def expand_dim(t, dim, k):
    t = t.unsqueeze(dim=dim)
    expand_shape = [-1] * len(t.shape)
    expand_shape[dim] = k
    return t.expand(*expand_shape)


def rel_to_abs(x):
    b, l, m = x.shape
    r = (m + 1) // 2
    col_pad = torch.zeros((b, l, 1), **to(x))
    x = torch.cat((x, col_pad), dim=2)
    flat_x = rearrange(x, "b l c -> b (l c)")
    flat_pad = torch.zeros((b, m - l), **to(x))
    flat_x_padded = torch.cat((flat_x, flat_pad), dim=1)
    final_x = flat_x_padded.reshape(b, l + 1, m)
    final_x = final_x[:, :l, -r:]
    return final_x


def relative_logits_1d(q, rel_k):
    b, h, w, _ = q.shape
    r = (rel_k.shape[0] + 1) // 2
    logits = einsum("b x y d, r d -> b x y r", q, rel_k)
    logits = rearrange(logits, "b x y r -> (b x) y r")
    logits = rel_to_abs(logits)
    logits = logits.reshape(b, h, w, r)
    logits = expand_dim(logits, dim=2, k=r)
    return logits


class RelPosEmb(nn.Module):
    def __init__(self, block_size, rel_size, dim_head):
        super().__init__()
        height = width = rel_size
        scale = dim_head ** -0.5
        self.block_size = block_size
        self.rel_height = nn.Parameter(torch.randn(height * 2 - 1, dim_head) * scale)
        self.rel_width = nn.Parameter(torch.randn(width * 2 - 1, dim_head) * scale)

    def forward(self, q):
        block = self.block_size
        q = rearrange(q, "b (x y) c -> b x y c", x=block)
        rel_logits_w = relative_logits_1d(q, self.rel_width)
        rel_logits_w = rearrange(rel_logits_w, "b x i y j-> b (x y) (i j)")
        q = rearrange(q, "b x y d -> b y x d")
        rel_logits_h = relative_logits_1d(q, self.rel_height)
        rel_logits_h = rearrange(rel_logits_h, "b x i y j -> b (y x) (j i)")
        return rel_logits_w + rel_logits_h


class HaloAttention(nn.Module):
    def __init__(self, dim, block_size, halo_size, dim_head=64, heads=8):
        super().__init__()
        assert halo_size > 0, "halo size must be greater than 0"
        self.dim = dim
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.block_size = block_size
        self.halo_size = halo_size
        inner_dim = dim_head * heads
        self.rel_pos_emb = RelPosEmb(block_size=block_size, rel_size=block_size + (halo_size * 2), dim_head=dim_head)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim)

    def forward(self, x):
        b, c, h, w, block, halo, heads, device = *x.shape, self.block_size, self.halo_size, self.heads, x.device
        assert h % block == 0 and w % block == 0, "fmap dimensions must be divisible by the block size"
        assert c == self.dim, f"channels for input ({c}) does not equal to the correct dimension ({self.dim})"
        q_inp = rearrange(x, "b c (h p1) (w p2) -> (b h w) (p1 p2) c", p1=block, p2=block)
        kv_inp = F.unfold(x, kernel_size=block + halo * 2, stride=block, padding=halo)
        kv_inp = rearrange(kv_inp, "b (c j) i -> (b i) j c", c=c)
        q = self.to_q(q_inp)
        k, v = self.to_kv(kv_inp).chunk(2, dim=-1)
        q, k, v = map(lambda t: rearrange(t, "b n (h d) -> (b h) n d", h=heads), (q, k, v))
        q *= self.scale
        sim = einsum("b i d, b j d -> b i j", q, k)
        sim += self.rel_pos_emb(q)
        mask = torch.ones(1, 1, h, w, device=device)
        mask = F.unfold(mask, kernel_size=block + (halo * 2), stride=block, padding=halo)
        mask = repeat(mask, "() j i -> (b i h) () j", b=b, h=heads)
        mask = mask.bool()
        max_neg_value = -torch.finfo(sim.dtype).max
        sim.masked_fill_(mask, max_neg_value)
        attn = sim.softmax(dim=-1)
        out = einsum("b i j, b j d -> b i d", attn, v)
        out = rearrange(out, "(b h) n d -> b n (h d)", h=heads)
        out = self.to_out(out)
        out = rearrange(out, "(b h w) (p1 p2) c -> b c (h p1) (w p2)", b=b, h=(h // block), w=(w // block), p1=block, p2=block)
        return out
'''

CBAM_MODULE = '''\
import torch
from torch import nn


class CBAM(nn.Module):
    """Another tutorial module: channel attention from global average pooling."""

    def __init__(self, c1, kernel_size=7):
        super().__init__()
        self.fc = nn.Conv2d(c1, c1, 1)
        self.act = nn.Sigmoid()

    def forward(self, x):
        return x * self.act(self.fc(x.mean((2, 3), keepdim=True)))
'''

HALO_BODY = "            c2 = ch[f]\n            args = [c2, *args]\n"
CBAM_BRANCH = "        elif m is CBAM:\n            c2 = ch[f]\n            args = [c2, *args]\n"

# How the tutorial's branch is written: (header line, whether CBAM shares it).
BRANCH_FORMS = {
    "is": "        elif m is HaloAttention:\n",
    "set": "        elif m in {CBAM, HaloAttention}:\n",
    "tuple": "        elif m in (HaloAttention,):\n",
}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _after_modules_import(tasks: Path, line: str) -> None:
    text = tasks.read_text(encoding="utf-8")
    start = text.index("from ultralytics.nn.modules import (")
    end = text.index("\n)\n", start) + 3
    tasks.write_text(text[:end] + line + text[end:], encoding="utf-8")


def install_cbam(package: Path, tasks_import: str = "from ultralytics.nn.Addmodules import *\n") -> None:
    """Another tutorial module in Addmodules: its file, `from .CBAM import *`, tasks import, `elif m is CBAM:`."""
    pkg = package / "nn" / "Addmodules"
    pkg.mkdir(exist_ok=True)
    (pkg / "CBAM.py").write_text(CBAM_MODULE, encoding="utf-8")
    init = pkg / "__init__.py"
    init.write_text((init.read_text() if init.is_file() else "") + "from .CBAM import *\n", encoding="utf-8")
    _after_modules_import(package / "nn" / "tasks.py", tasks_import)
    edit(package / "nn" / "tasks.py", "        else:\n            c2 = ch[f]\n", CBAM_BRANCH + "        else:\n            c2 = ch[f]\n")


def install_tutorial(
    package: Path,
    form: str,
    file_stem: str = "HaloAttention",
    package_import: str = "from .HaloAttention import *\n",
    tasks_import: str = "",
    cbam_tasks_import: str = "from ultralytics.nn.Addmodules import *\n",
) -> None:
    """The tutorial's steps, after CBAM was added the same way: module file, package import, a tasks.py
    import (none by default: CBAM's star import brings it), a branch, cfg/models/11/yolo11-HaloAttention.yaml."""
    install_cbam(package, cbam_tasks_import)
    pkg = package / "nn" / "Addmodules"
    (pkg / f"{file_stem}.py").write_text(TUTORIAL_MODULE, encoding="utf-8")
    (pkg / "__init__.py").write_text((pkg / "__init__.py").read_text() + package_import, encoding="utf-8")
    tasks = package / "nn" / "tasks.py"
    if tasks_import:
        _after_modules_import(tasks, tasks_import)
    if form == "base":  # into the first branch's set (a frozenset named base_modules from 8.3.70), as some posts do
        text = tasks.read_text(encoding="utf-8")
        old = "base_modules = frozenset(\n        {\n" if "base_modules = frozenset(" in text else "        if m in {\n"
        edit(tasks, old, old + "            HaloAttention,\n")
    elif form == "set":  # CBAM's own branch, widened to a set
        edit(tasks, "        elif m is CBAM:\n", BRANCH_FORMS["set"])
    else:
        edit(tasks, "        else:\n            c2 = ch[f]\n", BRANCH_FORMS[form] + HALO_BODY + "        else:\n            c2 = ch[f]\n")
    write_tutorial_yaml(package)


def write_tutorial_yaml(package: Path) -> Path:
    """cfg/models/11/yolo11-HaloAttention.yaml as the tutorial has it: the layer after backbone row 8."""
    base = yaml.safe_load((package / "cfg/models/11/yolo11.yaml").read_text(encoding="utf-8"))
    shift = lambda f: [shift(x) for x in f] if isinstance(f, list) else f + 1 if f >= 9 else f  # noqa: E731
    head = [[shift(r[0]), *r[1:]] for r in base["head"]]
    model = {**base, "backbone": [*base["backbone"][:9], [-1, 1, "HaloAttention", [2, 1]], *base["backbone"][9:]], "head": head}
    out = package / "cfg/models/11/yolo11-HaloAttention.yaml"
    out.write_text("# My YOLO11 with HaloAttention (from the tutorial)\n" + yaml.safe_dump(model, sort_keys=False), encoding="utf-8")
    return out
