"""Halo Attention: blocked local self-attention with a halo, for Ultralytics YOLO.

Paper: `Scaling Local Self-Attention for Parameter Efficient Visual Backbones`
    - https://arxiv.org/abs/2103.12731 (Vaswani et al., CVPR 2021)

The feature map is tiled from the top-left into non-overlapping ``block x block`` query blocks.
Each block attends to the ``win x win`` window (``win = block + 2 * halo``) that starts ``halo``
pixels above and left of it, with relative-position logits factorised into height and width.

Parameters and maths match the HaloAttention module widely copied into YOLO code bases (derived
from lucidrains/halonet-pytorch), so its checkpoints load with ``strict=True``. Differences:

* only keys inside the image take part in the softmax (the copied module inverted this mask);
* any ``H, W >= 1``: the map is padded bottom/right to a multiple of ``block``; the filler is
  masked as a key and cropped from the output;
* q, k, v are projected once per pixel and each block's k/v window is then gathered, instead of
  projecting every pixel once for each window that contains it;
* all heads run in one batched product. Only eager CPU runs split the heads into groups, so that
  the gathered windows stay small enough for the CPU caches (same maths, fewer page faults).

Only ``torch`` and the standard library are imported. Eager runs compute the window index and
mask once per input size (a small cache); while tracing they are computed from the traced sizes,
so ``torch.jit.trace`` and the legacy ONNX exporter (``dynamo=False``, opset 17 to 20) keep the
batch, ``H`` and ``W`` dynamic.
"""
from __future__ import annotations

import functools
from typing import Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Size = Union[int, Tensor]  # a python int in eager mode, a 0-dim tensor while tracing

CPU_WINDOW_BYTES = 1 << 20  # eager CPU: gather about this many bytes of k (and of v) at once, at least one head


def window_index(height: Size, width: Size, block: int, halo: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    """Locate each block's key window among the pixels of one image laid out block by block.

    Pixels of the map padded to ``(n_h * block, n_w * block)`` are numbered block by block (blocks
    row-major, then row-major inside a block), the order ``forward`` projects them in.

    Returns:
        index: (n_h * n_w, win**2) int64 pixel numbers; keys outside the image point at pixel 0.
        valid: (n_h * n_w, win**2) bool, True where the key lies inside the ``height x width`` image.
    """
    n_h, n_w = (height + block - 1) // block, (width + block - 1) // block
    offsets = torch.arange(block + 2 * halo, device=device) - halo
    rows = (torch.arange(n_h, device=device) * block).unsqueeze(1) + offsets  # n_h, win
    cols = (torch.arange(n_w, device=device) * block).unsqueeze(1) + offsets  # n_w, win
    row_ok, col_ok = (rows >= 0) & (rows < height), (cols >= 0) & (cols < width)
    rows = torch.where(row_ok, rows, torch.zeros_like(rows))
    cols = torch.where(col_ok, cols, torch.zeros_like(cols))
    rows = torch.div(rows, block, rounding_mode="floor") * (n_w * block * block) + rows % block * block
    cols = torch.div(cols, block, rounding_mode="floor") * (block * block) + cols % block
    index = rows[:, None, :, None] + cols[None, :, None, :]  # n_h, n_w, win, win
    valid = row_ok[:, None, :, None] & col_ok[None, :, None, :]  # n_h, n_w, win, win
    return index.flatten(2).flatten(0, 1), valid.flatten(2).flatten(0, 1)  # L, win**2


def window_layout(batch: Size, height: Size, width: Size, block: int, halo: int, device: torch.device,
                  dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """Where every block's keys are among the M = B * n_h * n_w * block**2 pixels, and which to mask.

    Returns:
        index: (B * n_h * n_w * win**2,) pixel of each window key (see ``window_index``), image by image.
        outside: (n_h * n_w, win**2) of ``dtype``: 0 for keys inside the image, ``-inf`` outside.
    """
    index, valid = window_index(height, width, block, halo, device)  # L, win**2
    outside = torch.zeros(valid.shape, dtype=dtype, device=device).masked_fill(~valid, float("-inf"))
    offsets = torch.arange(batch, device=device) * (index.shape[0] * block * block)  # first pixel of each image
    return (index + offsets.view(-1, 1, 1)).flatten(), outside


@functools.lru_cache(maxsize=16)
def cached_window_layout(batch: int, height: int, width: int, block: int, halo: int, device: torch.device,
                         dtype: torch.dtype, inference_mode: bool) -> Tuple[Tensor, Tensor]:
    """``window_layout`` for eager runs: computed once per size (some 30 small kernels fewer per call).

    ``inference_mode`` is part of the key: tensors made under ``torch.inference_mode`` (Ultralytics'
    predict and val) cannot be saved for a later backward.
    """
    return window_layout(batch, height, width, block, halo, device, dtype)


def relative_index(block: int, halo: int) -> Tensor:
    """Columns of ``q @ cat(rel_height, rel_width)^T`` that each query reads: (block**2, 2 * win).

    A query at in-block position (qi, qj) and a key at in-window position (wi, wj) use
    ``rel_height[wi - qi + win - 1]`` (columns ``[:win]``) and ``rel_width[wj - qj + win - 1]``
    (columns ``[win:]``, offset by the ``2 * win - 1`` rows of ``rel_height``).
    """
    win = block + 2 * halo
    query, key = torch.arange(block * block).unsqueeze(1), torch.arange(win)
    rows = key - torch.div(query, block, rounding_mode="floor") + win - 1
    cols = key - query % block + win - 1 + (2 * win - 1)
    return torch.cat((rows, cols), dim=1)  # b**2, 2 * win


def attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
    """``softmax(q @ k^T + bias) @ v`` for a batch of blocks.

    Args:
        q: (N, block**2, d) queries, already scaled by ``d ** -0.5``.
        k, v: (N, win**2, d) keys and values of each block's window.
        bias: (N, block**2, win**2) relative-position logits, ``-inf`` at keys
            outside the image (a query's own pixel is always inside its window, so no row is
            fully masked).

    Returns:
        (N, block**2, d).
    """
    return torch.bmm(attention_probs(q, k, bias), v)


def attention_probs(q: Tensor, k: Tensor, bias: Tensor) -> Tensor:
    """``softmax(q @ k^T + bias)``: (N, block**2, win**2); see ``attend``."""
    return torch.baddbmm(bias, q, k.transpose(1, 2)).softmax(dim=-1)


class RelPosEmb(nn.Module):
    """Relative position tables ``rel_height`` and ``rel_width``, each (2 * rel_size - 1, dim_head)."""

    def __init__(self, rel_size: int, dim_head: int) -> None:
        super().__init__()
        scale = dim_head**-0.5
        self.rel_height = nn.Parameter(torch.randn(rel_size * 2 - 1, dim_head) * scale)
        self.rel_width = nn.Parameter(torch.randn(rel_size * 2 - 1, dim_head) * scale)


class HaloAttention(nn.Module):
    """Multi-head halo attention: (B, dim, H, W) -> (B, dim, H, W) for any ``H, W >= 1``.

    Queries come in ``block_size x block_size`` blocks; the keys and values of a block come from
    the ``win x win`` window around it, ``win = block_size + 2 * halo_size``, so each query sees
    ``win**2`` keys (fewer at the image border). Attention runs at an inner width of
    ``heads * dim_head`` channels, whatever ``dim`` is; ``to_out`` maps back to ``dim``.
    In a YOLO yaml, ``[-1, 1, HaloAttention, [2, 1]]`` builds ``HaloAttention(c_in, 2, 1)``.

    Args:
        dim: input and output channels.
        block_size: side of a query block, >= 1.
        halo_size: pixels the key window reaches past each side of the block, >= 0.
        dim_head: channels per head (default 64).
        heads: number of heads (default 8).
    """

    def __init__(self, dim: int, block_size: int, halo_size: int, dim_head: int = 64, heads: int = 8) -> None:
        super().__init__()
        sizes = {"dim": (dim, 1), "block_size": (block_size, 1), "halo_size": (halo_size, 0),
                 "dim_head": (dim_head, 1), "heads": (heads, 1)}
        for name, (value, low) in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"HaloAttention: {name} must be an integer >= {low}, got {value!r}")
        self.dim = dim
        self.block_size = block_size
        self.halo_size = halo_size
        self.dim_head = dim_head
        self.heads = heads
        self.scale = dim_head**-0.5
        self.win_size = block_size + 2 * halo_size  # side of a key window
        self.inner_dim = heads * dim_head  # attention width
        self.rel_pos_emb = RelPosEmb(self.win_size, dim_head)
        self.to_q = nn.Linear(dim, self.inner_dim, bias=False)
        self.to_kv = nn.Linear(dim, self.inner_dim * 2, bias=False)
        self.to_out = nn.Linear(self.inner_dim, dim)
        # Not persistent: state dicts keep exactly the widely used module's keys.
        self.register_buffer("rel_index", relative_index(block_size, halo_size), persistent=False)

    def _project(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Project the (B, C, H, W) input once per pixel, in block order.

        Returns q (heads, N, b**2, d), the (M, 2 * heads, d) key and value heads, the
        (heads, N, b**2, win**2) bias, and the (N * win**2,) window index into the M pixels;
        N = B * n_h * n_w blocks, M = N * b**2 pixels.
        """
        if not torch.jit.is_tracing() and (x.dim() != 4 or x.shape[1] != self.dim):
            raise ValueError(f"HaloAttention expects a (B, {self.dim}, H, W) input, got {tuple(x.shape)}")
        batch, channels, height, width = x.shape
        block, win, heads, d = self.block_size, self.win_size, self.heads, self.dim_head
        n_h, n_w = (height + block - 1) // block, (width + block - 1) // block
        if torch.jit.is_tracing():  # pad amounts that stay valid for every traced size
            x = F.pad(x, (0, block - 1, 0, block - 1))[:, :, : n_h * block, : n_w * block]  # B, C, n_h * b, n_w * b
        elif height % block or width % block:
            x = F.pad(x, (0, n_w * block - width, 0, n_h * block - height))  # B, C, n_h * b, n_w * b
        x = x.view(batch, channels, n_h, block, n_w, block).permute(0, 2, 4, 3, 5, 1).reshape(-1, channels)  # M, C

        # The projections run as module calls, so hooks and FLOP counters (Ultralytics' thop) see them.
        q = (self.to_q(x) * self.scale).view(-1, block * block, heads, d)  # N, b**2, heads, d; scaled once
        kv = self.to_kv(x).view(-1, 2 * heads, d)  # M, 2 * heads, d  (key heads, then value heads)

        # Relative logits: one product with both tables, then each query picks its columns.
        rel_pos = self.rel_pos_emb
        tables = torch.cat((rel_pos.rel_height, rel_pos.rel_width))  # 2 * (2 * win - 1), d
        rel = torch.matmul(q, tables.t())  # N, b**2, heads, 2 * (2 * win - 1)
        picks = self.rel_index.view(1, block * block, 1, 2 * win).expand(rel.shape[0], -1, heads, -1)
        rel = torch.gather(rel, 3, picks).permute(2, 0, 1, 3)  # heads, N, b**2, 2 * win
        rel = rel[..., :win, None] + rel[..., None, win:]  # heads, N, b**2, win, win

        # Traced sizes must stay symbolic, so only eager runs use the cache.
        if torch.jit.is_tracing():
            index, outside = window_layout(batch, height, width, block, self.halo_size, x.device, rel.dtype)
        else:
            index, outside = cached_window_layout(batch, height, width, block, self.halo_size, x.device, rel.dtype,
                                                  torch.is_inference_mode_enabled())
        n_blocks = outside.shape[0]
        bias = rel.reshape(heads, batch, n_blocks, block * block, win * win) + outside.view(n_blocks, 1, win * win)
        q = q.permute(2, 0, 1, 3).contiguous()  # heads, N, b**2, d
        return q, kv, bias.view(heads, -1, block * block, win * win), index

    def _head_group_size(self, n_keys: Size, element_size: int, device: torch.device) -> int:
        """Heads to attend at once (divides ``heads``): all of them, except in eager CPU runs with large windows."""
        if torch.jit.is_tracing() or device.type != "cpu":
            return self.heads
        per_head = max(1, int(n_keys) * self.dim_head * element_size)
        fits = max(1, min(self.heads, CPU_WINDOW_BYTES // per_head))
        return max(size for size in range(1, fits + 1) if self.heads % size == 0)  # groups of equal size

    def _windows(self, heads: Tensor, index: Tensor, count: int) -> Tensor:
        """Gather the ``count`` key or value heads ``heads`` (M, count, d) at ``index``: (count * N, win**2, d)."""
        if count == 1:
            windows = heads.squeeze(1).index_select(0, index)  # N * win**2, d
        else:
            windows = heads.transpose(0, 1).index_select(1, index)  # h, N * win**2, d
        return windows.view(-1, self.win_size**2, self.dim_head)

    def attention_weights(self, x: Tensor) -> Tensor:
        """The attention probabilities that ``forward`` applies: (B, heads, n_h * n_w, block**2, win**2).

        Keys outside the image get exactly 0.
        """
        q, kv, bias, index = self._project(x)
        k = self._windows(kv.view(kv.shape[0], 2, self.heads, -1)[:, 0], index, self.heads)
        probs = attention_probs(q.flatten(0, 1), k, bias.flatten(0, 1))
        probs = probs.view(self.heads, x.shape[0], -1, *probs.shape[1:])  # heads, B, L, b**2, win**2
        return probs.transpose(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        block, heads = self.block_size, self.heads
        n_h, n_w = (height + block - 1) // block, (width + block - 1) // block
        q, kv, bias, index = self._project(x)
        size = self._head_group_size(index.shape[0], kv.element_size(), x.device)
        # split rather than slicing: its backward writes each gradient once, without a zero fill.
        kv_groups = kv.split(size, 1)  # key groups, then value groups: M, size, d each
        n_groups = heads // size
        groups = zip(q.split(size), kv_groups[:n_groups], kv_groups[n_groups:], bias.split(size))
        outs = []
        for q_group, k_group, v_group, bias_group in groups:
            k, v = self._windows(k_group, index, size), self._windows(v_group, index, size)  # h * N, win**2, d
            out = attend(q_group.flatten(0, 1), k, v, bias_group.flatten(0, 1))
            outs.append(out.view(q_group.shape).permute(1, 2, 0, 3))  # N, b**2, h, d
        out = torch.cat(outs, dim=2).flatten(2) if len(outs) > 1 else outs[0].flatten(2)  # N, b**2, heads * d
        out = self.to_out(out)  # N, b**2, C
        out = out.view(batch, n_h, n_w, block, block, -1).permute(0, 5, 1, 3, 2, 4)  # B, C, n_h, b, n_w, b
        out = out.reshape(batch, -1, n_h * block, n_w * block)  # B, C, n_h * b, n_w * b
        return out[:, :, :height, :width].contiguous()
