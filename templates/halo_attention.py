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
  projecting every pixel once for each window that contains it.

Only ``torch`` is imported. Sizes derived from the input are traced, so ``torch.jit.trace`` and
the legacy ONNX exporter (``dynamo=False``, opset 17 to 20) keep the batch, ``H`` and ``W`` dynamic.
"""
from __future__ import annotations

from typing import NamedTuple, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Size = Union[int, Tensor]  # a python int in eager mode, a 0-dim tensor while tracing


class AttentionInputs(NamedTuple):
    """What every head attends with; N = B * n_h * n_w blocks, M = B * n_h * b * n_w * b pixels."""

    queries: Tuple[Tensor, ...]  # per head (N, b**2, d), already scaled by d ** -0.5
    keys: Tuple[Tensor, ...]  # per head (M, d) strided views: the padded map, pixels row by row
    values: Tuple[Tensor, ...]  # per head (M, d)
    biases: Tuple[Tensor, ...]  # per head (N, b**2, win**2): relative logits, -inf outside the image
    index: Tensor  # (N * win**2,) pixel of each window key in a (M, d) map
    geometry: Tuple[Size, Size, Size, Size, Size]  # B, n_h, n_w, H, W


def window_index(height: Size, width: Size, block: int, halo: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    """Locate each block's key window in the map padded to ``(n_h * block, n_w * block)``.

    Returns:
        index: (n_h * n_w, win**2) int64 row-major pixel numbers of the padded map; keys outside the
            image point at pixel 0.
        valid: (n_h * n_w, win**2) bool, True where the key lies inside the ``height x width`` image.
    """
    n_h, n_w = (height + block - 1) // block, (width + block - 1) // block
    offsets = torch.arange(block + 2 * halo, device=device) - halo
    rows = (torch.arange(n_h, device=device) * block).unsqueeze(1) + offsets  # n_h, win
    cols = (torch.arange(n_w, device=device) * block).unsqueeze(1) + offsets  # n_w, win
    row_ok, col_ok = (rows >= 0) & (rows < height), (cols >= 0) & (cols < width)
    rows = torch.where(row_ok, rows, torch.zeros_like(rows)) * (n_w * block)
    cols = torch.where(col_ok, cols, torch.zeros_like(cols))
    index = rows[:, None, :, None] + cols[None, :, None, :]  # n_h, n_w, win, win
    valid = row_ok[:, None, :, None] & col_ok[None, :, None, :]  # n_h, n_w, win, win
    return index.flatten(2).flatten(0, 1), valid.flatten(2).flatten(0, 1)  # L, win**2


def relative_index(block: int, halo: int) -> Tensor:
    """Table rows per (query, window offset): (2, block**2, win), rows into rel_height then rel_width.

    A query at in-block position (qi, qj) and a key at in-window position (wi, wj) use
    ``rel_height[wi - qi + win - 1]`` and ``rel_width[wj - qj + win - 1]``.
    """
    win = block + 2 * halo
    query, key = torch.arange(block * block).unsqueeze(1), torch.arange(win)
    return torch.stack((key - query // block + win - 1, key - query % block + win - 1))  # 2, block**2, win


def relative_keys(rel_height: Tensor, rel_width: Tensor, index: Tensor) -> Tensor:
    """Relative-position vectors per (query, window key): (block**2, win**2, d).

    Entry (p, wi * win + wj) is ``rel_height[index[0, p, wi]] + rel_width[index[1, p, wj]]``, so the
    relative logit of query p and key (wi, wj) is the query's dot product with it.
    """
    n_query, win = index.shape[1:]
    rows = rel_height.index_select(0, index[0].flatten()).view(n_query, win, 1, -1)  # b**2, win, 1, d
    cols = rel_width.index_select(0, index[1].flatten()).view(n_query, 1, win, -1)  # b**2, 1, win, d
    return (rows + cols).flatten(1, 2)  # b**2, win**2, d


def halo_attention_probs(q: Tensor, k: Tensor, bias: Tensor) -> Tensor:
    """Attention of each query over its block's window: ``softmax(q @ k^T + bias)``.

    Args:
        q: (N, block**2, d) queries, already scaled by ``d ** -0.5``.
        k: (N, win**2, d) keys of the window.
        bias: (N, block**2, win**2) relative-position logits, ``-inf`` at keys outside the image
            (a query's own pixel is always inside its window, so no row is fully masked).

    Returns:
        (N, block**2, win**2) probabilities.
    """
    # (k @ q^T)^T rather than q @ k^T, so that the gradient of the gathered keys comes out contiguous.
    logits = torch.baddbmm(bias.transpose(1, 2), k, q.transpose(1, 2)).transpose(1, 2)  # N, b**2, win**2
    return logits.softmax(dim=-1)


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

    def _attention_inputs(self, x: Tensor) -> AttentionInputs:
        """Project the (B, C, H, W) input once per pixel and lay it out per head (see AttentionInputs)."""
        if not torch.jit.is_tracing() and (x.dim() != 4 or x.shape[1] != self.dim):
            raise ValueError(f"HaloAttention expects a (B, {self.dim}, H, W) input, got {tuple(x.shape)}")
        batch, channels, height, width = x.shape
        block, win, heads, d = self.block_size, self.win_size, self.heads, self.dim_head
        n_h, n_w = (height + block - 1) // block, (width + block - 1) // block
        x = F.pad(x, (0, block - 1, 0, block - 1))[:, :, : n_h * block, : n_w * block]  # B, C, n_h * b, n_w * b
        x = x.permute(0, 2, 3, 1).reshape(-1, channels)  # M, C

        # The projections run as module calls, so hooks and FLOP counters (Ultralytics' thop) see them.
        q = self.to_q(x).view(batch, n_h, block, n_w, block, heads, d) * self.scale  # B, n_h, b, n_w, b, heads, d
        q = q.permute(5, 0, 1, 3, 2, 4, 6).reshape(heads, -1, block * block, d)  # heads, N, b**2, d
        kv = self.to_kv(x).view(-1, 2 * heads, d)  # M, 2 * heads, d  (key heads, then value heads)

        index, valid = window_index(height, width, block, self.halo_size, x.device)  # L, win**2
        n_blocks = index.shape[0]
        offsets = torch.arange(batch, device=x.device) * (n_blocks * block * block)  # first pixel of each image
        index = (index + offsets.view(-1, 1, 1)).flatten()  # N * win**2

        rel_pos = self.rel_pos_emb
        rel_keys = relative_keys(rel_pos.rel_height, rel_pos.rel_width, self.rel_index)  # b**2, win**2, d
        rel = torch.bmm(q.flatten(0, 1).transpose(0, 1), rel_keys.transpose(1, 2))  # b**2, heads * N, win**2
        outside = torch.zeros(valid.shape, dtype=rel.dtype, device=x.device).masked_fill(~valid, float("-inf"))
        bias = rel.transpose(0, 1).view(heads, batch, n_blocks, block * block, win * win)  # heads, B, L, b**2, win**2
        bias = bias + outside.view(n_blocks, 1, win * win)  # heads, B, L, b**2, win**2
        bias = bias.view(heads, -1, block * block, win * win)  # heads, N, b**2, win**2
        maps = kv.unbind(1)  # strided (M, d) maps, no copy; the backward stacks all 2 * heads gradients at once
        geometry = (batch, n_h, n_w, height, width)
        return AttentionInputs(q.unbind(0), maps[:heads], maps[heads:], bias.unbind(0), index, geometry)

    def _window(self, pixels: Tensor, index: Tensor, n_blocks: Size) -> Tensor:
        """Gather one head's keys or values, (N, win**2, d), from its (M, d) pixel map."""
        return pixels.index_select(0, index).view(n_blocks, -1, self.dim_head)

    def attention_weights(self, x: Tensor) -> Tensor:
        """The attention probabilities that ``forward`` applies: (B, heads, n_h * n_w, block**2, win**2).

        Keys outside the image get exactly 0.
        """
        inputs = self._attention_inputs(x)
        probs = [halo_attention_probs(q, self._window(k, inputs.index, q.shape[0]), bias)
                 for q, k, bias in zip(inputs.queries, inputs.keys, inputs.biases)]
        probs = torch.stack(probs).view(self.heads, inputs.geometry[0], -1, *probs[0].shape[1:])  # heads, B, L, ...
        return probs.transpose(0, 1)  # B, heads, L, b**2, win**2

    def forward(self, x: Tensor) -> Tensor:
        inputs = self._attention_inputs(x)
        batch, n_h, n_w, height, width = inputs.geometry
        block = self.block_size
        outs = []
        for q, k, v, bias in zip(inputs.queries, inputs.keys, inputs.values, inputs.biases):
            k, v = self._window(k, inputs.index, q.shape[0]), self._window(v, inputs.index, q.shape[0])  # N, win**2, d
            outs.append(torch.bmm(halo_attention_probs(q, k, bias), v))  # N, b**2, d
        out = self.to_out(torch.stack(outs, 2).flatten(2))  # N, b**2, C  (heads merged)
        out = out.view(batch, n_h, n_w, block, block, -1).permute(0, 5, 1, 3, 2, 4)  # B, C, n_h, b, n_w, b
        out = out.reshape(batch, -1, n_h * block, n_w * block)  # B, C, n_h * b, n_w * b
        return out[:, :, :height, :width].contiguous()
