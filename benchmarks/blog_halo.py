"""The widely copied HaloAttention, re-implemented as the benchmark baseline.

Paper: `Scaling Local Self-Attention for Parameter Efficient Visual Backbones`
    - https://arxiv.org/abs/2103.12731

This file re-implements, for comparison only, the algorithm of the HaloAttention module that
blog posts and YOLO "improvement" repositories copy (derived from an early lucidrains
halonet-pytorch release). It keeps that module's choices on purpose:

* keys/values are projected *after* ``F.unfold`` of the input, so every pixel is projected
  ``(win / block) ** 2`` times;
* the feature map must be divisible by the block size (an ``assert``);
* relative positions use the ``rel_to_abs`` padding trick;
* the padding mask is inverted: it is True at *real* pixels and those are filled with
  ``-finfo.max``. ``fix_mask=True`` applies the upstream fix (``~mask``) so the baseline's
  maths can be compared with the shipped module.

It lives in ``benchmarks/`` only and is never installed into a user's Ultralytics.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn


def _rel_to_abs(x: torch.Tensor) -> torch.Tensor:
    """Convert relative logits (B, L, 2R - 1) to absolute ones (B, L, R) by pad-and-reshape."""
    b, l, m = x.shape
    r = (m + 1) // 2
    x = torch.cat((x, x.new_zeros(b, l, 1)), dim=2)
    flat = rearrange(x, "b l c -> b (l c)")
    flat = torch.cat((flat, flat.new_zeros(b, m - l)), dim=1)
    return flat.reshape(b, l + 1, m)[:, :l, -r:]


def _relative_logits_1d(q: torch.Tensor, rel_k: torch.Tensor) -> torch.Tensor:
    """Relative logits along the last spatial axis: q (B, X, Y, D) -> (B, X, R, Y, R)."""
    b, x, y, _ = q.shape
    r = (rel_k.shape[0] + 1) // 2
    logits = torch.einsum("bxyd,rd->bxyr", q, rel_k)
    logits = _rel_to_abs(rearrange(logits, "b x y r -> (b x) y r"))
    logits = logits.reshape(b, x, y, r)
    return logits.unsqueeze(2).expand(-1, -1, r, -1, -1)


class RelPosEmb(nn.Module):
    """Factorised (height, width) relative position embedding of the copied module."""

    def __init__(self, block_size: int, rel_size: int, dim_head: int) -> None:
        super().__init__()
        scale = dim_head**-0.5
        self.block_size = block_size
        self.rel_height = nn.Parameter(torch.randn(rel_size * 2 - 1, dim_head) * scale)
        self.rel_width = nn.Parameter(torch.randn(rel_size * 2 - 1, dim_head) * scale)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        q = rearrange(q, "b (x y) c -> b x y c", x=self.block_size)
        logits_w = _relative_logits_1d(q, self.rel_width)
        logits_w = rearrange(logits_w, "b x i y j -> b (x y) (i j)")
        q = rearrange(q, "b x y d -> b y x d")
        logits_h = _relative_logits_1d(q, self.rel_height)
        logits_h = rearrange(logits_h, "b x i y j -> b (y x) (j i)")
        return logits_w + logits_h


class BlogHaloAttention(nn.Module):
    """Baseline HaloAttention with the copied module's parameters, maths and defects.

    Args:
        dim: input and output channels.
        block_size: side of the non-overlapping query blocks.
        halo_size: extra pixels around a block that its keys/values come from.
        dim_head: channels per head (default 64).
        heads: number of heads (default 8).
        fix_mask: apply the upstream mask fix instead of the inverted mask (default False).
    """

    def __init__(
        self,
        dim: int,
        block_size: int,
        halo_size: int,
        dim_head: int = 64,
        heads: int = 8,
        fix_mask: bool = False,
    ) -> None:
        super().__init__()
        if halo_size <= 0:
            raise ValueError("halo size must be greater than 0")
        self.dim = dim
        self.heads = heads
        self.scale = dim_head**-0.5
        self.block_size = block_size
        self.halo_size = halo_size
        self.fix_mask = fix_mask
        inner_dim = dim_head * heads
        self.rel_pos_emb = RelPosEmb(block_size, block_size + 2 * halo_size, dim_head)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        block, halo, heads = self.block_size, self.halo_size, self.heads
        assert h % block == 0 and w % block == 0, "fmap dimensions must be divisible by the block size"
        assert c == self.dim, f"channels for input ({c}) does not equal to the correct dimension ({self.dim})"

        q_inp = rearrange(x, "b c (h p1) (w p2) -> (b h w) (p1 p2) c", p1=block, p2=block)
        kv_inp = F.unfold(x, kernel_size=block + 2 * halo, stride=block, padding=halo)
        kv_inp = rearrange(kv_inp, "b (c j) i -> (b i) j c", c=c)

        q = self.to_q(q_inp)
        k, v = self.to_kv(kv_inp).chunk(2, dim=-1)
        q, k, v = (rearrange(t, "b n (h d) -> (b h) n d", h=heads) for t in (q, k, v))
        q *= self.scale

        sim = torch.einsum("bid,bjd->bij", q, k)
        sim += self.rel_pos_emb(q)

        mask = torch.ones(1, 1, h, w, device=x.device)
        mask = F.unfold(mask, kernel_size=block + 2 * halo, stride=block, padding=halo)
        mask = repeat(mask, "() j i -> (b i h) () j", b=b, h=heads).bool()
        if self.fix_mask:
            mask = ~mask
        sim.masked_fill_(mask, -torch.finfo(sim.dtype).max)

        attn = sim.softmax(dim=-1)
        out = torch.einsum("bij,bjd->bid", attn, v)
        out = rearrange(out, "(b h) n d -> b n (h d)", h=heads)
        out = self.to_out(out)
        return rearrange(
            out, "(b h w) (p1 p2) c -> b c (h p1) (w p2)", b=b, h=h // block, w=w // block, p1=block, p2=block
        )
