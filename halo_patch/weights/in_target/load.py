"""Read the source checkpoint as Ultralytics saves it, without running anything of a HaloAttention file
that is not the installed one.

A checkpoint pickles each module by class path. One trained with the tutorial's module names
`ultralytics.nn.Addmodules.HaloAttention.HaloAttention`; one trained with `--layout addmodules` names
`ultralytics.nn.Addmodules.halo_attention.HaloAttention`, which a `--layout modules` tree no longer has.
Both are read as the installed class (their state dicts are the same; only the class path differs), and
the paths so read are reported.
"""

from __future__ import annotations

from .common import Refused


def installed_class(class_name):
    """The class the patched tasks.py builds for `class_name`."""
    import ultralytics.nn.tasks as tasks

    cls = getattr(tasks, class_name, None)
    if cls is None:
        raise Refused(
            "{}: Ultralytics here has no {} in nn/tasks.py; run halo-patch apply first".format(tasks.__file__, class_name)
        )
    return cls


def module_classes(cls):
    """Names of the torch modules defined in the installed class's own file (HaloAttention and its helpers)."""
    import importlib

    import torch

    module = importlib.import_module(cls.__module__)
    return {
        name: obj
        for name, obj in vars(module).items()
        if isinstance(obj, type) and issubclass(obj, torch.nn.Module) and obj.__module__ == module.__name__
    }


def _pickle_module(classes, installed, read_as):
    """A pickle module whose Unpickler reads our classes from any other ultralytics path as the installed ones."""
    import pickle
    import types

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if name in classes and module != installed and module.startswith("ultralytics."):
                read_as.add("{}.{}".format(module, name))
                return classes[name]
            return super().find_class(module, name)

    mod = types.ModuleType("halo_weights_pickle")
    mod.__dict__.update({k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
    mod.Unpickler = Unpickler
    mod.load = lambda f, **kw: Unpickler(f, **kw).load()
    return mod


def load_checkpoint(path, class_name):
    """(checkpoint dict, its model, class paths read as the installed classes, the installed class's module)."""
    import torch

    cls = installed_class(class_name)
    read_as = set()
    module = _pickle_module(module_classes(cls), cls.__module__, read_as)
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", pickle_module=module, weights_only=False)
        except TypeError:  # torch < 1.13: no weights_only
            ckpt = torch.load(path, map_location="cpu", pickle_module=module)
    except (ImportError, AttributeError) as exc:
        raise Refused("{}: needs {} to be read, which this Python cannot import ({})".format(path, _missing(exc), exc))
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: torch raises many kinds
        raise Refused("{}: not a PyTorch checkpoint this torch can read ({}: {}); expected an Ultralytics .pt file".format(
            path, type(exc).__name__, _first_line(exc)))
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    if not isinstance(model, torch.nn.Module) or not isinstance(getattr(model, "yaml", None), dict):
        raise Refused("{}: a PyTorch file, but not an Ultralytics checkpoint (no `model` with its yaml); "
                      "expected a .pt saved by Ultralytics (yolo11n.pt, best.pt, last.pt)".format(path))
    rows = model.yaml.get("backbone"), model.yaml.get("head")
    if not isinstance(rows[0], list):
        raise Refused("{}: its model has no `backbone:` layers; expected a YOLO checkpoint".format(path))
    return ckpt, model, sorted(read_as), cls.__module__


def _missing(exc):
    name = getattr(exc, "name", None)
    return "module {}".format(name) if name else "a class"


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else ""
