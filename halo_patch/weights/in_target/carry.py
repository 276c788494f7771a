"""Build the HaloAttention model with the checkpoint's classes, move every tensor of layer k to the
layer k moved to (the planner's index map, computed by halo-patch and passed in), write the checkpoint."""

from __future__ import annotations

import copy
import datetime

from .common import LAYER_KEY, Refused, base_stem, plain, shape
from .load import load_checkpoint

# Settings a checkpoint's yaml takes from its data or its training, kept from the source.
KEPT_SETTINGS = ("nc", "kpt_shape", "channels")


def choose(config, src_yaml, src_rows):
    """(candidate, mode): "convert" when the checkpoint already has the yaml's layers (another class
    path), "insert" when it is the yaml's base; else the candidate made from the checkpoint's base name."""
    cands = config["candidates"]
    if config["chosen"] is not None:
        cand = cands[config["chosen"]]
        return cand, "convert" if src_rows == cand["rows"] else "insert"
    for mode, field in (("convert", "rows"), ("insert", "base_rows")):
        hits = [c for c in cands if c[field] == src_rows]
        if len(hits) > 1:
            raise Refused("{}: fits several HaloAttention yamls ({}); pick one with --yaml".format(
                config["source"], ", ".join(c["yaml"] for c in hits)))
        if hits:
            return hits[0], mode
    yaml_file = str(src_yaml.get("yaml_file", "?"))
    stem = base_stem(yaml_file)
    hits = [c for c in cands if c["base"] == stem]
    if hits:
        return hits[0], "insert"
    made = ", ".join(c["yaml"] for c in cands) or "none"
    raise Refused(
        "{}: a {} model (from {}), and halo-patch apply wrote no HaloAttention yaml for that base in {} (it wrote: {}); "
        "run `halo-patch apply --base {}` first, or pass the yaml with --yaml".format(
            config["source"], stem, yaml_file, config["package_dir"], made, stem))


def _layer_name(model, index):
    layers = getattr(model, "model", None)
    try:
        return type(layers[index]).__name__
    except (TypeError, IndexError):
        return "?"


def build(cand, src_model, scale):
    """The HaloAttention model, of the checkpoint's own model class, with its classes and settings."""
    import torch

    d = copy.deepcopy(cand["model"])
    for key in KEPT_SETTINGS:
        if key in src_model.yaml:
            d[key] = copy.deepcopy(src_model.yaml[key])
    d["scale"] = scale
    d["yaml_file"] = cand["builds"].get(scale, cand["yaml"])
    torch.manual_seed(0)  # the new layers start the same on every run
    return type(src_model)(cfg=d, nc=d.get("nc"), verbose=False)


def map_tensors(config, cand, mode, src_model, model, scale):
    """{new key: tensor}, [not carried], with the checkpoint refused at the first layer that does not fit."""
    index_map = list(range(len(cand["rows"]))) if mode == "convert" else cand["map"]
    src_sd, dst_sd = src_model.state_dict(), model.state_dict()
    carried, not_carried = {}, []
    where = "{} ({}) at scale {}".format(cand["builds"].get(scale, cand["build"]), cand["yaml"], scale)
    for key, tensor in src_sd.items():
        hit = LAYER_KEY.match(key)
        i = int(hit.group(1)) if hit else None
        if i is not None and i >= len(index_map):
            raise Refused("{}: layer {} ({}) has no place in {}, whose base has {} layers; the checkpoint is another model "
                          "than {}".format(config["source"], i, _layer_name(src_model, i), where, len(index_map), cand["base"]))
        new = "model.{}.{}".format(index_map[i], hit.group(2)) if hit else key
        j = index_map[i] if hit else None
        same_layer = j is None or _layer_name(src_model, i) == _layer_name(model, j)
        if new not in dst_sd and same_layer:
            not_carried.append({"key": key, "why": "{} here has no such tensor".format(_layer_name(model, j) if hit else "the model")})
            continue
        if new not in dst_sd or dst_sd[new].shape != tensor.shape or not same_layer:
            theirs = shape(dst_sd[new]) if new in dst_sd else "absent"
            raise Refused(
                "{}: layer {} ({}) does not fit layer {} ({}) of {}: {} is {} in the checkpoint, {} in the yaml's model; "
                "the checkpoint is another model or scale than the yaml's base {}; pass the HaloAttention yaml of its own "
                "model and scale with --yaml".format(
                    config["source"], i, _layer_name(src_model, i), j, _layer_name(model, j), where, key, shape(tensor),
                    theirs, cand["base"]))
        carried[new] = tensor
    return carried, not_carried, src_sd, dst_sd


def new_layers(model, dst_sd, carried):
    """The layers holding tensors the checkpoint did not give: (layer, module, tensors, values)."""
    out = {}
    for key, tensor in dst_sd.items():
        if key in carried:
            continue
        hit = LAYER_KEY.match(key)
        j = int(hit.group(1)) if hit else -1
        row = out.setdefault(j, {"layer": j, "module": _layer_name(model, j), "tensors": 0, "values": 0, "keys": []})
        row["tensors"] += 1
        row["values"] += int(tensor.numel())
        row["keys"].append(key)
    return [out[j] for j in sorted(out)]


def carry(config, progress):
    import torch
    import ultralytics

    progress("reading " + config["source"])
    ckpt, src_model, read_as, installed = load_checkpoint(config["source"], config["class_name"])
    src_yaml = src_model.yaml
    src_rows = plain(list(src_yaml["backbone"]) + list(src_yaml.get("head") or []))
    cand, mode = choose(config, src_yaml, src_rows)
    scale = config["scale"] or src_yaml.get("scale") or (cand["scales"][0] if cand["scales"] else "")
    progress("building " + cand["builds"].get(scale, cand["yaml"]))
    model = build(cand, src_model, scale)
    progress("carrying tensors")
    carried, not_carried, src_sd, dst_sd = map_tensors(config, cand, mode, src_model, model, scale)
    added = new_layers(model, dst_sd, carried)
    dst_sd.update({k: v.to(dst_sd[k].dtype) for k, v in carried.items()})
    model.load_state_dict(dst_sd, strict=True)
    names = getattr(src_model, "names", None)
    if names is not None:
        model.names = names
    if hasattr(src_model, "args"):
        model.args = src_model.args
    if all(t.dtype == torch.float16 for t in src_sd.values() if t.is_floating_point()):
        model.half()  # as Ultralytics saves its checkpoints
    for p in model.parameters():
        p.requires_grad = False
    dropped = ("model", "ema", "optimizer", "updates", "scaler", "epoch", "best_fitness")
    out = {k: v for k, v in ckpt.items() if k not in dropped}
    out.update(
        date=datetime.datetime.now().astimezone().isoformat(),
        version=ultralytics.__version__,
        epoch=-1,
        best_fitness=None,
        model=model,
        ema=None,
        updates=None,
        optimizer=None,
        halo_patch={"source": config["source"], "yaml": cand["yaml"], "mode": mode, "read_as": read_as},
    )
    progress("writing the checkpoint")
    torch.save(out, config["output"])
    train_args = ckpt.get("train_args") if isinstance(ckpt.get("train_args"), dict) else {}
    return {
        "mode": mode,
        "yaml": cand["yaml"],
        "build": model.yaml["yaml_file"],
        "base": cand["base"],
        "scale": scale,
        "source_yaml": str(src_yaml.get("yaml_file", "")),
        "names": {str(k): str(v) for k, v in (names.items() if isinstance(names, dict) else enumerate(names or []))},
        "nc": model.yaml.get("nc"),
        "source_tensors": len(src_sd),
        "carried": len(carried),
        "model_tensors": len(dst_sd),
        "moved_layers": sum(1 for i, j in enumerate(cand["map"]) if i != j) if mode == "insert" else 0,
        "inserted": cand["inserted"] if mode == "insert" else [],
        "new": added,
        "not_carried": not_carried,
        "read_as": read_as,
        "installed": installed,
        "data": train_args.get("data"),
        "imgsz": train_args.get("imgsz"),
    }
