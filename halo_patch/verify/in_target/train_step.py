"""Step `train-step`: one loss + backward on a task-shaped batch; every HaloAttention tensor gets a gradient."""

from __future__ import annotations

from .batches import BATCH_SIZE, make_batch
from .common import CheckFailed, class_name, halo_layers


def run(ctx, model):
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    built = ctx.built[model.key]
    net = built.model.to(ctx.device)
    layers = halo_layers(net, model.name)
    size = ctx.main_size(built.task)
    net.args = get_cfg(DEFAULT_CFG)  # what the trainer sets: the loss reads its gains and overlap_mask
    net.train()
    for p in net.parameters():
        p.requires_grad_(True)
    net.zero_grad(set_to_none=True)
    free = not any(True for _, m in layers for _ in m.parameters())  # a parameter-free module: its output must get a gradient
    outputs = []

    def keep(module, inputs, output):
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.retain_grad()
            outputs.append(output)

    hooks = [m.register_forward_hook(keep) for _, m in layers] if free else []
    try:
        loss = net.loss(make_batch(net, built.task, size, ctx.device))[0]
    finally:
        for hook in hooks:
            hook.remove()
    loss = loss.sum() if isinstance(loss, torch.Tensor) else sum(loss)
    if not bool(torch.isfinite(loss)):
        raise CheckFailed(f"loss is {loss.item()}")
    loss.backward()
    prefix = len(layers) > 1  # name tensors by layer only when there are several layers
    params = [(f"{i}.{n}" if prefix else n, p) for i, m in layers for n, p in m.named_parameters()]
    if not params and free:
        flowing = [o for o in outputs if o.grad is not None and bool(o.grad.abs().sum() > 0)]
        net.zero_grad(set_to_none=True)
        net.eval()
        if not outputs or len(flowing) != len(outputs):
            raise CheckFailed(f"no gradient reaches the output of {class_name()} (a module without parameters)", {"loss": float(loss.item())})
        return f"loss {loss.item():.3f}; {class_name()} has no parameters; gradients flow through all {len(outputs)} of its outputs at {size}x{size}", {"loss": float(loss.item()), "params": []}
    if not params:
        raise CheckFailed(f"{class_name()} has no parameters to train")
    zero = [n for n, p in params if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    bad = [n for n, p in params if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
    data = {"loss": float(loss.item()), "params": [n for n, _ in params], "zero_grad": zero, "nonfinite_grad": bad}
    net.zero_grad(set_to_none=True)
    net.eval()
    if bad:
        raise CheckFailed(f"non-finite gradients on {class_name()}'s {', '.join(bad)}", data)
    if zero:
        raise CheckFailed(f"zero gradient on {class_name()}'s {', '.join(zero)} (of {len(params)} tensors): that part never learns", data)
    detail = f"loss {loss.item():.3f}; non-zero gradients on all {len(params)} {class_name()} tensors at {size}x{size}"
    if built.task != "detect":
        detail += f" ({built.task} batch of {BATCH_SIZE})"
    return detail, data
