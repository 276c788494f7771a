"""`halo-patch weights`: checkpoints made by Ultralytics' own trainer carried into the HaloAttention yamls
apply wrote, on copies of the installed release. Every source tensor is found, equal, at the index its layer
moved to (computed here from the yaml's rows, not by the planner); only HaloAttention layers are new; the
output loads, keeps the class names and fine-tunes. Also the refusals and the two class-path conversions
(the tutorial's module; --layout addmodules into --layout modules under restricted loading).

Each checkpoint is trained once (one process for all of them), and each tree is checked in one process.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from cli_helpers import cli
from conftest import copy_installed, run_cli
from in_target_check import assert_in_target_source
from trained import MAKE_DATA, SOURCES, TRAIN_ARGS, run_in
from tutorial_install import install_tutorial

README = Path(__file__).resolve().parent.parent / "README.md"
HALO = "HaloAttention"
NAMES = {0: "widget", 1: "gadget"}
YAML_FILES = {"det": "cfg/models/11/yolo11-HaloAttention.yaml", "seg": "cfg/models/11/yolo11-seg-HaloAttention.yaml"}

# In the patched detect/seg tree: every carried tensor equal at its new key, what is new, names, the yaml, and
# Ultralytics' own transfer counts: YOLO(yaml).load(SRC) (the plain way) and YOLO(OUT).train (1 epoch).
CHECK_CARRIED = MAKE_DATA + f"""
import json, logging, re, sys, torch
from ultralytics import YOLO
from ultralytics.utils import LOGGER
work, cases = sys.argv[1], json.loads(sys.argv[2])
data = make_data(work + "/data")
said = []
class Keep(logging.Handler):
    def emit(self, record):
        said.append(record.getMessage())
LOGGER.addHandler(Keep())
def transferred():
    hits = [m for m in said if "Transferred" in m]
    return re.search(r"Transferred (\\d+)/(\\d+)", hits[-1]).groups() if hits else None
report = {{}}
for name, case in cases.items():
    src = torch.load(case["src"], map_location="cpu", weights_only=False)
    out = torch.load(case["out"], map_location="cpu", weights_only=False)
    src_sd = (src.get("ema") or src["model"]).state_dict()
    out_model = out["model"]
    out_sd = out_model.state_dict()
    moved = {{int(k): v for k, v in case["moved"].items()}}
    unequal, expected = [], set()
    for key, tensor in src_sd.items():
        i, rest = re.match(r"model\\.(\\d+)\\.(.+)", key).groups()
        new = "model.%d.%s" % (moved[int(i)], rest)
        expected.add(new)
        if new not in out_sd or out_sd[new].dtype != tensor.dtype or not torch.equal(out_sd[new], tensor):
            unequal.append(key)
    new_layers = sorted({{int(k.split(".")[1]) for k in out_sd if k not in expected}})
    r = {{
        "unequal": unequal, "src_tensors": len(src_sd), "new_layers": new_layers,
        "new_types": sorted({{type(out_model.model[j]).__name__ for j in new_layers}}),
        "halo_keys_all_new": all(k not in expected for k in out_sd if type(out_model.model[int(k.split(".")[1])]).__name__ == "HaloAttention"),
        "rows": out_model.yaml["backbone"] + out_model.yaml["head"], "scale": out_model.yaml.get("scale"),
        "nc": out_model.yaml.get("nc"), "names": {{str(k): v for k, v in out_model.names.items()}},
        "halo_class": sorted({{type(m).__module__ for m in out_model.modules() if type(m).__name__ == "HaloAttention"}}),
    }}
    if case.get("plain_load"):
        said.clear()
        YOLO(case["plain_load"]).load(case["src"])
        r["plain_load"] = transferred()
    said.clear()
    model = YOLO(case["out"])
    r["loaded_names"] = {{str(k): v for k, v in model.names.items()}}
    if case["train"]:
        model.train(data=data, project=work + "/runs", name=name, {TRAIN_ARGS})
        r["train_transferred"] = transferred()
        r["trained"] = (model.trainer.save_dir / "weights" / "last.pt").is_file() and model.trainer.epoch == 0
        best = torch.load(str(model.trainer.best), map_location="cpu", weights_only=False)
        torch.save(best["model"].state_dict(), work + "/" + name + "_trained_state.pt")
    report[name] = r
torch.save({{"not": "a checkpoint"}}, work + "/plain_torch.pt")
print("REPORT " + json.dumps(report))
"""

# In the tutorial tree after --adopt: OUT has the installed class; its output equals the tutorial model's with
# each tutorial HaloAttention swapped for the installed class holding the same state dict (built here).
CHECK_TUTORIAL = """
import json, sys, torch
import ultralytics.nn.tasks as tasks
src = torch.load(sys.argv[1], map_location="cpu", weights_only=False)["model"].float().eval()
out = torch.load(sys.argv[2], map_location="cpu", weights_only=False)["model"].float().eval()
src_halo = type(src.model[9]).__module__
for j, layer in enumerate(src.model):
    if type(layer).__name__ == "HaloAttention":
        swapped = tasks.HaloAttention(layer.dim, layer.block_size, layer.halo_size, int(round(layer.scale ** -2)), layer.heads)
        swapped.load_state_dict(layer.state_dict(), strict=True)
        swapped.f, swapped.i, swapped.type, swapped.np = layer.f, layer.i, layer.type, layer.np
        src.model[j] = swapped
x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    same = torch.equal(src(x)[0], out(x)[0])
print("REPORT " + json.dumps({"src_halo": src_halo, "out_halo": type(out.model[9]).__module__, "same": same,
                              "names": {str(k): v for k, v in out.names.items()}}))
"""

# In the --layout modules tree, under ULTRALYTICS_SAFE_LOAD=1: OUT loads, SRC (an Addmodules class path) does not.
CHECK_SAFE_LOAD = """
import json, sys, torch
from ultralytics import YOLO
out = YOLO(sys.argv[2])
sd = out.model.state_dict()
src_sd = torch.load(sys.argv[3], weights_only=True)
try:
    YOLO(sys.argv[1])
    src_error = None
except Exception as exc:
    src_error = type(exc).__name__
print("REPORT " + json.dumps({"halo": type(out.model.model[9]).__module__, "src_error": src_error,
                              "equal": sorted(sd) == sorted(src_sd) and all(torch.equal(sd[k], src_sd[k]) for k in sd)}))
"""


def moved_by_rows(rows: list) -> dict[int, int]:
    """Old layer -> new layer, from the HaloAttention yaml's rows alone: the k-th row that is not ours was base layer k."""
    return dict(enumerate(k for k, r in enumerate(rows) if r[2] != HALO))


@pytest.fixture(scope="module")
def world(tmp_path_factory, trained_sources: dict) -> dict:
    """Three trees (patched: detect default + seg after 6 and 8; --layout modules; tutorial, adopted), the
    checkpoints Ultralytics' trainer made (trained once per session: conftest trained_sources), and every
    weights run, each done once."""
    root = tmp_path_factory.mktemp("weights", numbered=False)
    trees = {name: root / name for name in ("p", "m", "t")}
    for tree in trees.values():
        copy_installed(tree)
    assert cli("apply", "--target", str(trees["p"])).code == 0
    assert cli("apply", "--target", str(trees["p"]), "--base", "yolo11-seg", "--after", "6", "--after", "8").code == 0
    assert cli("apply", "--target", str(trees["m"]), "--layout", "modules").code == 0
    install_tutorial(trees["t"] / "ultralytics", form="is")  # as in the tree the tutorial's model was saved in

    work = trained_sources["work"]
    src = dict(trained_sources["src"])
    saved = trained_sources["tutorial_class"]
    adopted = cli("apply", "--target", str(trees["t"]), "--adopt")
    assert adopted.code == 0, adopted.err

    out_dir = root / "out"
    out_dir.mkdir()
    (out_dir / "layout.pt").write_bytes(b"an older file, replaced with --force")
    seg_yaml = trees["p"] / "ultralytics" / YAML_FILES["seg"]
    p, t = (["--target", str(trees[k])] for k in "pt")
    commands = {  # as users (and `compare`) run them: each its own process; two at a time
        "det_n": ([str(src["det_n"]), *p, "--json", str(out_dir / "det_n.json")], out_dir),
        "det_s": ([str(src["det_s"]), "-o", str(out_dir / "det_s.pt"), *p, "--json", "-"], None),
        "seg_n": ([str(src["seg_n"]), "-o", str(out_dir / "seg_n.pt"), "--yaml", str(seg_yaml), *p], None),
        "seg_s": ([str(src["seg_s"]), "-o", str(out_dir / "seg_s.pt"), "--yaml", "yolo11s-seg-HaloAttention.yaml", *p], None),
        "tutorial": ([str(src["tutorial"]), "-o", str(out_dir / "tutorial.pt"), *t], None),
        "mismatch": ([str(src["det_s"]), "-o", str(out_dir / "mismatch.pt"), "--yaml", "yolo11n-HaloAttention.yaml", *p], None),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_cli, "weights", *args, cwd=cwd) for name, (args, cwd) in commands.items()}
        runs = {name: f.result() for name, f in futures.items()}
    outs = {"det_n": out_dir / "best-HaloAttention.pt", **{n: out_dir / f"{n}.pt" for n in ("det_s", "seg_n", "seg_s")}}
    rows = {n: yaml.safe_load((trees["p"] / "ultralytics" / YAML_FILES[n[:3]]).read_text()) for n in outs}
    rows = {n: d["backbone"] + d["head"] for n, d in rows.items()}
    for name, result in runs.items():
        assert result.returncode == (2 if name == "mismatch" else 0), (name, result.stdout, result.stderr)
    cases = {
        n: {"src": str(src[n]), "out": str(outs[n]), "moved": moved_by_rows(rows[n]),
            "plain_load": SOURCES[n][1] if n == "det_n" else None, "train": n in ("det_n", "seg_s")}
        for n in outs
    }
    check = root / "check"
    checked = run_in(trees["p"], CHECK_CARRIED, str(check), json.dumps(cases))
    # Trained by Ultralytics with halo-patch's class in the --layout addmodules tree: the layout conversion's source.
    src["halo_n"] = check / "runs" / "det_n" / "weights" / "best.pt"
    runs["layout"] = run_cli("weights", str(src["halo_n"]), "-o", str(out_dir / "layout.pt"), "--force", "--target", str(trees["m"]))
    return dict(root=root, trees=trees, src=src, outs=outs, rows=rows, runs=runs, checked=checked, saved=saved, work=work,
                check=check, out_dir=out_dir)


@pytest.mark.parametrize("name", ["det_n", "det_s", "seg_n", "seg_s"])
def test_every_tensor_lands_where_its_layer_moved(world: dict, name: str) -> None:
    r = world["checked"][name]
    assert r["unequal"] == [] and r["src_tensors"] > 400
    assert r["new_types"] == [HALO] and r["halo_keys_all_new"]
    inserted = [k for k, row in enumerate(world["rows"][name]) if row[2] == HALO]
    assert r["new_layers"] == inserted == ([9] if name.startswith("det") else [7, 10])
    assert r["rows"] == world["rows"][name]  # model.yaml is the HaloAttention yaml
    assert (r["scale"], r["nc"], r["names"], r["loaded_names"]) == (name[-1], 2, {"0": "widget", "1": "gadget"}, r["names"])
    assert r["halo_class"] == ["ultralytics.nn.Addmodules.halo_attention"]
    # YOLO(OUT).train: the trainer's own transfer takes every tensor, and the epoch runs
    total = r["src_tensors"] + 6 * len(inserted)
    if name in ("det_n", "seg_s"):  # one per task and placement
        assert r["train_transferred"] == [str(total), str(total)] and r["trained"]


def test_report_table_next_command_and_json(world: dict) -> None:
    out = world["runs"]["det_n"].stdout
    src, made = world["src"]["det_n"], world["outs"]["det_n"]
    data = world["work"] / "data" / "data.yaml"
    n = world["checked"]["det_n"]["src_tensors"]
    assert f"Carried {src} (yolo11n.yaml, 2 classes: widget, gadget) into {made}, built as yolo11n-HaloAttention.yaml" in out
    assert re.search(rf"│ carried\s+│ {n} / {n} in SRC\s+│ layer k to the layer k moved to: 9-23 -> 10-24", out)
    assert re.search(r"│ new\s+│ 6\s+│ layer 9 HaloAttention \(525,440 values\), fresh", out)
    assert re.search(r"│ not carried\s+│ 0\s+│", out)
    # the tree is a copy: this Python imports another ultralytics without the tree first on PYTHONPATH
    assert f"Next: PYTHONPATH={world['trees']['p']} yolo train model={made} data={data} imgsz=64\n" in out
    report = json.loads((world["out_dir"] / "det_n.json").read_text())
    assert (report["carried"], report["source_tensors"], report["mode"], report["inserted"]) == (n, n, "insert", [9])
    halo_keys = ("rel_pos_emb.rel_height", "rel_pos_emb.rel_width", "to_q.weight", "to_kv.weight", "to_out.weight", "to_out.bias")
    assert report["new"][0]["keys"] == [f"model.9.{k}" for k in halo_keys]
    assert json.loads(world["runs"]["det_s"].stdout)["output"] == str(world["outs"]["det_s"])  # `--json -`: only the JSON
    seg = world["runs"]["seg_s"].stdout
    assert re.search(r"│ carried\s+│ (\d+) / \1 in SRC\s+│ layer k to the layer k moved to: 7-8 -> 8-9, 9-23 -> 11-25", seg)


def test_wrong_scale_is_refused_naming_the_first_layer(world: dict) -> None:
    result = world["runs"]["mismatch"]
    assert result.stderr == (
        f"error: {world['src']['det_s']}: layer 0 (Conv) does not fit layer 0 (Conv) of yolo11n-HaloAttention.yaml "
        "(ultralytics/cfg/models/11/yolo11-HaloAttention.yaml) at scale n: model.0.conv.weight is 32x3x3x3 in the "
        "checkpoint, 16x3x3x3 in the yaml's model; the checkpoint is another model or scale than the yaml's base yolo11; "
        "pass the HaloAttention yaml of its own model and scale with --yaml\n"
    )
    assert not (world["out_dir"] / "mismatch.pt").exists()
    assert not [p for p in world["out_dir"].iterdir() if p.name.startswith(".")]


def test_tutorial_checkpoint_gets_the_installed_class_same_outputs(world: dict) -> None:
    assert world["saved"] == "ultralytics.nn.Addmodules.HaloAttention"  # the class the tutorial's model was saved with
    out = world["runs"]["tutorial"].stdout
    assert "same layers, as ultralytics.nn.Addmodules.halo_attention classes: ultralytics.nn.Addmodules.HaloAttention (HaloAttention, RelPosEmb)" in out
    assert "built as yolo11n-HaloAttention-halo-patch.yaml" in out
    r = run_in(world["trees"]["t"], CHECK_TUTORIAL, str(world["src"]["tutorial"]), str(world["out_dir"] / "tutorial.pt"))
    assert r == {"src_halo": "ultralytics.nn.Addmodules.HaloAttention", "out_halo": "ultralytics.nn.Addmodules.halo_attention",
                 "same": True, "names": {"0": "widget", "1": "gadget"}}


def test_layout_addmodules_checkpoint_loads_under_restricted_loading(world: dict) -> None:
    assert world["runs"]["layout"].returncode == 0, world["runs"]["layout"].stderr
    out = world["runs"]["layout"].stdout
    assert "same layers, as ultralytics.nn.modules.halo_attention classes: ultralytics.nn.Addmodules.halo_attention (HaloAttention, RelPosEmb)" in out
    src_state = world["check"] / "det_n_trained_state.pt"
    r = run_in(world["trees"]["m"], CHECK_SAFE_LOAD, str(world["src"]["halo_n"]), str(world["out_dir"] / "layout.pt"),
               str(src_state), env={"ULTRALYTICS_SAFE_LOAD": "1"})
    assert (r["halo"], r["equal"]) == ("ultralytics.nn.modules.halo_attention", True)
    assert r["src_error"] is not None  # the source itself does not load there


def test_readme_figures(world: dict) -> None:
    """README's before/after: a plain .load() of a 2-class yolo11n checkpoint vs `weights` (this test measures both)."""
    r = world["checked"]["det_n"]
    n = r["src_tensors"]
    plain, total = r["plain_load"]
    text = README.read_text(encoding="utf-8")
    assert f"`.load()` carries {plain}/{total}" in text
    assert f"`halo-patch weights` carries {n}/{n}" in text


def test_refusals_write_nothing(world: dict, tmp_path: Path) -> None:
    tree = str(world["trees"]["p"])
    src = world["src"]["det_n"]
    existing = tmp_path / "taken.pt"
    existing.write_bytes(b"mine")
    refused = cli("weights", str(src), "-o", str(existing), "--target", tree)
    assert (refused.code, refused.err) == (2, f"error: {existing}: already exists; pass --force to replace it, or -o another file\n")
    assert existing.read_bytes() == b"mine"
    base = cli("weights", str(src), "-o", str(tmp_path / "a.pt"), "--yaml", "yolo11n.yaml", "--target", tree)
    assert base.code == 2
    assert base.err.startswith("error: --yaml yolo11n.yaml: halo-patch apply wrote no such yaml in ")
    edited = world["trees"]["p"] / "ultralytics/cfg/models/11/yolo11-HaloAttention.yaml"
    copy = tmp_path / "edited-HaloAttention.yaml"
    copy.write_text(edited.read_text() + "# mine\n")
    own = cli("weights", str(src), "-o", str(tmp_path / "a.pt"), "--yaml", str(copy), "--target", tree)
    assert own.err == (
        f"error: --yaml {copy}: changed since apply wrote it; expected a HaloAttention yaml apply wrote "
        "(`halo-patch status` lists them; `halo-patch apply --base NAME` writes one)\n"
    )
    missing = cli("weights", str(tmp_path / "nope.pt"), "--target", tree)
    assert missing.err == f"error: {tmp_path / 'nope.pt'}: no such file; expected an Ultralytics .pt checkpoint (yolo11n.pt, best.pt)\n"
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    plain = world["check"] / "plain_torch.pt"
    refused = cli("weights", str(text), "-o", str(tmp_path / "a.pt"), "--target", tree).err
    assert refused == f"error: {text}: not a PyTorch checkpoint (neither torch's zip format nor a pickle); expected an Ultralytics .pt file\n"
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(world["src"]["det_n"].read_bytes()[:5000])
    for bad, why in ((truncated, "not a PyTorch checkpoint this torch can read"), (plain, "a PyTorch file, but not an Ultralytics checkpoint")):
        result = run_cli("weights", str(bad), "-o", str(tmp_path / "a.pt"), "--target", tree)
        assert result.returncode == 2 and result.stderr.startswith(f"error: {bad}: {why}"), result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited-HaloAttention.yaml", "notes.pt", "taken.pt", "truncated.pt"]


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "halo_patch/weights/in_target").glob("*.py")), ids=lambda p: p.name)
def test_in_target_code_is_python_38_with_allowed_imports(path: Path) -> None:
    """It runs in whatever Python owns the target: 3.8 syntax, stdlib + torch + ultralytics, never halo_patch,
    and torch/ultralytics only inside functions."""
    assert_in_target_source(path, {"torch", "ultralytics"})


def test_weights_verb_imports_neither_torch_nor_ultralytics_itself(world: dict, tmp_path: Path) -> None:
    """The work runs in the target's Python; the installer side stays light (a refusal before it is fast)."""
    from test_cli_light import run_probe

    tree = world["trees"]["p"]
    notes = tmp_path / "notes.pt"
    notes.write_text("text\n")
    for args in (["weights", "--help"], ["weights", str(notes), "--target", str(tree)]):
        result = run_probe(*args, pythonpath=tree)
        assert result["heavy"] == [] and result["code"] == (0 if "--help" in args else 2), (args, result)
