"""Module files in the forms tutorials give them (for tests/test_module_option.py), and the one torch
process per tree that builds each yaml, trains it one step and reports the gradients of the new layers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from warm_python import WarmPython

SE = '''import torch
from torch import nn


class SEBlock(nn.Module):
    """Squeeze-and-excitation, as the attention posts give it."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Conv2d(channels, max(channels // reduction, 1), 1), nn.SiLU(), nn.Conv2d(max(channels // reduction, 1), channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(self.pool(x))
'''

SPPELAN = '''import torch
import torch.nn as nn

from ultralytics.nn.modules.conv import Conv


class SPPELANBlock(nn.Module):
    """SPP-ELAN, as the SPPELAN post gives it (renamed: Ultralytics has its own SPPELAN)."""

    def __init__(self, c1, c2, c3, k=5):
        super().__init__()
        self.c = c3
        self.cv1 = Conv(c1, c3, 1, 1)
        self.cv2 = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.cv3 = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.cv4 = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)
        self.cv5 = Conv(4 * c3, c2, 1, 1)

    def forward(self, x):
        y = [self.cv1(x)]
        y.extend(m(y[-1]) for m in [self.cv2, self.cv3, self.cv4])
        return self.cv5(torch.cat(y, 1))
'''

SHUFFLE = '''import torch
from torch import nn


class ChannelShuffle(nn.Module):
    """Parameter-free: shuffles channels between groups."""

    def __init__(self, groups=2):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        b, c, h, w = x.shape
        g = self.groups if c % self.groups == 0 else 1
        return x.view(b, g, c // g, h, w).transpose(1, 2).reshape(b, c, h, w)
'''

CHILD = r'''
import json, sys
import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel

out = {}
for yaml_path, names in json.loads(sys.argv[1]):
    torch.manual_seed(0)
    model = DetectionModel(yaml_path, nc=2, verbose=False)
    model.args = get_cfg()
    model.train()
    layers = [m for m in model.model if type(m).__name__ in names]
    outputs = []

    def keep(mod, inputs, output):
        output.retain_grad()
        outputs.append(output)

    hooks = [m.register_forward_hook(keep) for m in layers]
    img = torch.rand(2, 3, 96, 128)  # non-square
    batch = {"img": img, "cls": torch.tensor([[0.0], [1.0]]), "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.4], [0.4, 0.6, 0.2, 0.2]]), "batch_idx": torch.tensor([0.0, 1.0])}
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    loss, _ = model.loss(batch)
    loss.sum().backward()
    optim.step()
    out[yaml_path] = {
        "layers": [type(m).__name__ for m in layers],
        "param_grad": [float(sum(p.grad.abs().sum() for p in m.parameters() if p.grad is not None)) for m in layers],
        "n_params": [sum(p.numel() for p in m.parameters()) for m in layers],
        "out_grad": [float(o.grad.abs().sum()) if o.grad is not None else 0.0 for o in outputs],
        "loss": float(loss.sum()),
    }
print(json.dumps(out))
'''


def write_modules(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for stem, text in (("se_block", SE), ("sppelan_block", SPPELAN), ("channel_shuffle", SHUFFLE)):
        out[stem] = folder / f"{stem}.py"
        out[stem].write_text(text)
    return out


def train_step(warm: WarmPython, root: Path, jobs: list[tuple[str, list[str]]], tmp: Path) -> dict:
    """Build and train one step every (yaml, class names) in one torch process with `root` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(root), "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp / "cfg"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_CURRENT_TEST", None)
    r = warm.run(CHILD, cwd=tmp, env=env, argv=(json.dumps(jobs),), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])
