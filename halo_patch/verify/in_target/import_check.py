"""Step `import`: this Python imports the patched target, HaloAttention and every yaml from it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .common import CheckFailed, class_name, describe_copy, first_line, inside


def run(ctx, model):
    exe = sys.executable
    spec = importlib.util.find_spec("ultralytics")  # locate without running a wrong copy's __init__
    if spec is None or not spec.origin:
        raise CheckFailed(f"{exe} cannot import ultralytics; the target is {ctx.package_dir}")
    found = Path(spec.origin).resolve().parent
    if found != ctx.package_dir:
        raise CheckFailed(
            f"{exe} imports ultralytics from {found} ({describe_copy(found)}), not from the patched target "
            f"{ctx.package_dir}: training, DDP workers and exports started with this Python use that copy "
            f"(KeyError: '{class_name()}' where it is not patched); patch that copy "
            f"(halo-patch apply --target {found}) or remove it from this environment",
            {"imported": str(found), "python": exe},
        )
    import torch

    import ultralytics
    from ultralytics.nn import tasks
    from ultralytics.utils.torch_utils import select_device

    keep_settings_in_temp_dir(ctx)
    for what, path in (("ultralytics", ultralytics.__file__), ("ultralytics.nn.tasks", tasks.__file__)):
        if not inside(path, ctx.package_dir):
            raise CheckFailed(f"{what} was imported from {path}, outside the target {ctx.package_dir}")
    cls = getattr(tasks, class_name(), None)
    if cls is None:
        raise CheckFailed(
            f"{tasks.__file__} does not bind {class_name()} when imported, though its imports bind it as read "
            "(something in them deletes or rebinds the name); look at the imports of tasks.py"
        )
    module_file = sys.modules[cls.__module__].__file__
    if not inside(module_file, ctx.package_dir):
        raise CheckFailed(f"{class_name()} was imported from {module_file}, outside the target {ctx.package_dir}")
    yamls = [str(check_model_yaml(ctx, m)) for m in ctx.models.values()]
    try:
        ctx.device = select_device(ctx.config["device"], verbose=False)
    except Exception as exc:  # Ultralytics raises ValueError/AssertionError for devices it cannot use
        raise CheckFailed(f"device {ctx.config['device']!r} is not usable here: {first_line(exc)}") from None
    device_name = torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else ctx.device.type
    python = ".".join(map(str, sys.version_info[:3]))
    data = {
        "python": exe,
        "python_version": python,
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "ultralytics_file": ultralytics.__file__,
        "halo_attention_file": module_file,
        "halo_attention_class": f"{cls.__module__}.{cls.__name__}",
        "model_yaml": yamls[0] if yamls else None,
        "model_yamls": yamls,
        "device": str(ctx.device),
        "device_name": device_name,
    }
    detail = f"ultralytics {ultralytics.__version__} from the target; python {python}, torch {torch.__version__}, {device_name}"
    return detail, data


def check_model_yaml(ctx, model):
    """The file Ultralytics finds for the model's name is the one apply wrote (not another of that name)."""
    from ultralytics.utils.checks import check_yaml

    try:
        found = Path(check_yaml(model.yaml_file)).resolve()
    except Exception as exc:  # FileNotFoundError, or Ultralytics' own error for an unknown name
        raise CheckFailed(f"Ultralytics cannot find {model.yaml_file}: {first_line(exc)}") from None
    if found != model.yaml_path:
        where = "outside the target" if not inside(found, ctx.package_dir) else "another file of that name"
        raise CheckFailed(f"{model.yaml_file} resolves to {found} ({where}), not to {model.yaml_path} that apply wrote")
    return found


def keep_settings_in_temp_dir(ctx):
    """Point Ultralytics' settings (already in our YOLO_CONFIG_DIR) at the temp dir as well."""
    from ultralytics.utils import SETTINGS

    wanted = {"datasets_dir": ctx.datadir, "weights_dir": ctx.workdir / "weights", "runs_dir": ctx.workdir / "runs"}
    SETTINGS.update({k: str(v) for k, v in wanted.items() if k in SETTINGS})
