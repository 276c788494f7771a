"""apply --base/--after/--args and `halo-patch bases` as a user runs them, on a copy of the installed
Ultralytics: what is written, what is reported, and the one-line errors (exit 2, nothing changed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from cli_helpers import cli
from conftest import copy_installed, read_version, seal_matches, tree_hashes



@pytest.fixture()
def package(tmp_path: Path) -> Path:
    return copy_installed(tmp_path / "tree")


def rows_of(path: Path) -> list:
    model = yaml.safe_load(path.read_text(encoding="utf-8"))
    return model["backbone"] + model["head"]


def test_bases_lists_the_targets_yamls_with_their_default_placement(package: Path) -> None:
    result = cli("bases", "--target", str(package))
    assert result.code == 0, result.err
    lines = {line.split("│")[1].strip(): line for line in result.out.splitlines() if line.count("│") > 5}
    assert {"yolo11", "yolo11-seg", "yolo11-pose", "yolo11-obb", "yolo11-cls", "yolo12", "yolo26", "yolov8"} <= set(lines)
    assert [c.strip() for c in lines["yolo11"].split("│")[1:-1]] == [
        "yolo11", "yolo11", "detect", "24", "8 C3k2 (then SPPF)", "ultralytics/cfg/models/11/yolo11.yaml"
    ]
    assert "9 C2PSA (then Classify)" in lines["yolo11-cls"]  # no SPPF: the end of the backbone
    assert "8 A2C2f (then nn.Upsample)" in lines["yolo12"]
    assert "pose" in lines["yolo11-pose"] and "obb" in lines["yolo11-obb"] and "segment" in lines["yolo11-seg"]


def test_bases_leaves_out_the_yamls_apply_wrote(package: Path) -> None:
    assert cli("apply", "--target", str(package), "--base", "yolo11-seg").code == 0
    out = cli("bases", "--target", str(package)).out
    assert "yolo11-seg " in out and "HaloAttention" not in out


def test_after_several_placements_and_args(package: Path) -> None:
    result = cli("apply", "--target", str(package), "--base", "yolov8", "--after", "8", "--after", "4", "--args", "4,2,32,4")
    assert result.code == 0, result.err
    path = package / "cfg/models/v8/yolov8-HaloAttention.yaml"
    rows = rows_of(path)
    assert rows[5] == rows[10] == [-1, 1, "HaloAttention", [4, 2, 32, 4]]
    assert rows[13][0] == [-1, 7] and rows[16][0] == [-1, 5]  # the P4/P3 skips read the layers after 6 and 4
    assert rows[-1][0] == [17, 20, 23]
    assert "  - [-1, 1, HaloAttention, [4, 2, 32, 4]] # 5 inserted by halo-patch" in path.read_text(encoding="utf-8")
    assert "HaloAttention(c_in, 4, 2, 32, 4) in ultralytics/cfg/models/v8/yolov8-HaloAttention.yaml (from yolov8.yaml, detect):" in result.out
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in result.out.splitlines() if line.count("│") == 9]
    assert cells[:2] == [  # layer, follows, read by, input channels at n/s/m/l/x (YOLOv8 m: width 0.75, cap 768)
        ["5", "4 C2f", "6 Conv, 16 Concat", "64", "128", "192", "256", "320"],
        ["10", "8 C2f", "11 SPPF", "256", "512", "576", "512", "640"],
    ]
    assert "Graph proven: taking the inserted rows out gives back yolov8.yaml layer for layer, edge for edge." in result.out
    assert "Build it with YOLO('yolov8n-HaloAttention.yaml') (scales n/s/m/l/x: the letter after the version number)." in result.out


def test_dry_run_shows_the_proof_and_the_diff_and_writes_nothing(package: Path) -> None:
    before = tree_hashes(package.parent)
    result = cli("apply", "--target", str(package), "--dry-run", "--base", "yolo11-pose", "--after", "10")
    assert result.code == 0, result.err
    assert "HaloAttention(c_in, 2, 1) in ultralytics/cfg/models/11/yolo11-pose-HaloAttention.yaml (from yolo11-pose.yaml, pose):" in result.out
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in result.out.splitlines() if line.count("│") == 9]
    assert cells == [["11", "10 C2PSA", "12 nn.Upsample, 22 Concat", "256", "512", "512", "512", "768"]]
    assert "+  - [-1, 1, HaloAttention, [2, 1]] # 11 inserted by halo-patch" in result.out
    assert "would create ultralytics/cfg/models/11/yolo11-pose-HaloAttention.yaml (model yaml, HaloAttention at layer 11)" in result.out
    assert tree_hashes(package.parent) == before


def test_a_bare_file_name_is_taken_as_the_base_name(package: Path) -> None:
    result = cli("apply", "--target", str(package), "--base", "yolo11-obb.yaml", "--check")
    assert result.code == 1 and "would create ultralytics/cfg/models/11/yolo11-obb-HaloAttention.yaml" in result.out


def test_insertion_into_the_head(package: Path) -> None:
    assert cli("apply", "--target", str(package), "--after", "16").code == 0
    rows = rows_of(package / "cfg/models/11/yolo11-HaloAttention.yaml")
    assert rows[17] == [-1, 1, "HaloAttention", [2, 1]]
    assert rows[18][2] == "Conv" and rows[18][0] == -1 and rows[-1][0] == [17, 20, 23]


def test_base_path_writes_under_cfg_models_custom(package: Path, tmp_path: Path) -> None:
    mine = tmp_path / "my" / "yolo11-mine.yaml"
    mine.parent.mkdir()
    shutil.copy(package / "cfg/models/11/yolo11.yaml", mine)
    mine_bytes = mine.read_bytes()
    result = cli("apply", "--target", str(package), "--base", str(mine))
    assert result.code == 0, result.err
    out = package / "cfg/models/custom/yolo11-mine-HaloAttention.yaml"
    assert seal_matches(out.read_bytes(), out) and mine.read_bytes() == mine_bytes
    assert f"# Generated by halo-patch 0.1.0 from {mine} (Ultralytics" in out.read_text(encoding="utf-8")
    assert "Build it with YOLO('yolo11n-mine-HaloAttention.yaml')" in result.out
    assert cli("revert", "--target", str(package)).code == 0
    assert not (package / "cfg/models/custom").exists()


def test_reapply_with_other_placement_replaces_only_our_own_unchanged_file(package: Path) -> None:
    path = package / "cfg/models/11/yolo11-HaloAttention.yaml"
    pristine = tree_hashes(package.parent)
    assert cli("apply", "--target", str(package)).code == 0
    again = cli("apply", "--target", str(package), "--after", "6")
    assert again.code == 0, again.err
    assert rows_of(path)[7] == [-1, 1, "HaloAttention", [2, 1]]
    path.write_text(path.read_text(encoding="utf-8") + "# my note\n", encoding="utf-8")
    before = tree_hashes(package.parent)
    refused = cli("apply", "--target", str(package), "--after", "4")
    assert refused.code == 2
    assert refused.err == (
        f"error: {path} (Ultralytics {package_version(package)}): written by halo-patch but edited since; "
        "expected it as halo-patch wrote it: undo your edits or move the file away, then apply again\n"
    )
    assert tree_hashes(package.parent) == before
    path.write_bytes(path.read_bytes().replace(b"# my note\n", b""))
    assert cli("revert", "--target", str(package)).code == 0
    assert tree_hashes(package.parent) == pristine


def test_two_yamls_of_one_name_are_refused(package: Path, tmp_path: Path) -> None:
    """Ultralytics finds a model yaml by name: a user's yolo11.yaml must not shadow the shipped one's output."""
    assert cli("apply", "--target", str(package)).code == 0
    mine = tmp_path / "yolo11.yaml"
    shutil.copy(package / "cfg/models/11/yolo11.yaml", mine)
    before = tree_hashes(package.parent)
    result = cli("apply", "--target", str(package), "--base", str(mine))
    assert result.code == 2
    assert result.err == (
        f"error: {package / 'cfg/models/custom/yolo11-HaloAttention.yaml'} (Ultralytics {package_version(package)}): "
        "ultralytics/cfg/models/11/yolo11-HaloAttention.yaml has the same name, and Ultralytics finds model yamls by "
        "name; expected a unique name: rename your base yaml\n"
    )
    assert tree_hashes(package.parent) == before


def package_version(package: Path) -> str:
    return read_version(package)  # the tree's own __init__.py, read by the tests (not halo_patch's reader)


BAD_YAMLS = {
    "broken.yaml": ("backbone: [\n", "not valid YAML at line 2"),
    "nobackbone.yaml": ("nc: 3\n", "no `backbone:` list of layers"),
    "forward.yaml": (
        "backbone:\n  - [-1, 1, Conv, [64, 3, 2]]\n  - [5, 1, Conv, [64, 3, 2]]\nhead:\n  - [-1, 1, Classify, [nc]]\n",
        "layer 1 reads layer 5, which does not come before it",
    ),
    "badrow.yaml": ("backbone:\n  - [-1, 1, Conv]\nhead: []\n", "layer 0 is not a [from, repeats, module, args] list"),
}


@pytest.mark.parametrize("name", sorted(BAD_YAMLS))
def test_a_bad_base_yaml_is_one_line_exit_2_nothing_changed(name: str, package: Path, tmp_path: Path) -> None:
    text, problem = BAD_YAMLS[name]
    bad = tmp_path / name
    bad.write_text(text, encoding="utf-8")
    before = tree_hashes(package.parent)
    result = cli("apply", "--target", str(package), "--base", str(bad))
    assert (result.code, result.err) == (2, f"error: {bad}: {problem}; expected an Ultralytics model yaml\n")
    assert tree_hashes(package.parent) == before


ERRORS = [
    (["--after", "30"], "{p}/cfg/models/11/yolo11.yaml (Ultralytics {v}): --after 30 is not a layer HaloAttention "
     "can follow; expected 0 to 22 (layer 23, Detect, is the output)"),
    (["--after", "23"], "{p}/cfg/models/11/yolo11.yaml (Ultralytics {v}): --after 23 is not a layer HaloAttention "
     "can follow; expected 0 to 22 (layer 23, Detect, is the output)"),
    (["--base", "yolo11-cls", "--after", "10"], "{p}/cfg/models/11/yolo11-cls.yaml (Ultralytics {v}): --after 10 is "
     "not a layer HaloAttention can follow; expected 0 to 9 (layer 10, Classify, is the output)"),
    (["--after", "8", "--after", "8"], "{p}/cfg/models/11/yolo11.yaml (Ultralytics {v}): --after 8 given twice; "
     "expected each layer once"),
    (["--base", "yolo11n-seg"], "--base yolo11n-seg: no such model yaml in {p}/cfg/models (Ultralytics {v}); close names: "
     "yolo11-seg, yoloe-11-seg, yolo12-seg, yolo11-pose, yolov8-seg; `halo-patch bases` lists them all"),
    (["--base", "yolo11-HaloAttention"], "--base yolo11-HaloAttention: a yaml halo-patch writes; pass the base it is made "
     "from: --base yolo11"),
    (["--base", "/nonexistent/mine.yaml"], "/nonexistent/mine.yaml: no such file; expected an Ultralytics model yaml"),
    (["--args", "2,1,0"], "--args '2,1,0': expected block,halo[,dim_head,heads] as integers: block 1 to 64, halo 0 to 64, dim_head and heads 1 to 4096; e.g. 2,1"),
    (["--args", "0,0"], "--args '0,0': expected block,halo[,dim_head,heads] as integers: block 1 to 64, halo 0 to 64, dim_head and heads 1 to 4096; e.g. 2,1"),
    (["--args", "99999999999999999999,1"], "--args '99999999999999999999,1': expected block,halo[,dim_head,heads] as integers: block 1 to 64, halo 0 to 64, dim_head and heads 1 to 4096; e.g. 2,1"),
    (["--args", "x"], "--args 'x': expected block,halo[,dim_head,heads] as integers: block 1 to 64, halo 0 to 64, dim_head and heads 1 to 4096; e.g. 2,1"),
]


@pytest.mark.parametrize(("flags", "message"), ERRORS, ids=[" ".join(f) for f, _ in ERRORS])
def test_flag_errors_are_one_line_exit_2_nothing_changed(flags: list[str], message: str, package: Path) -> None:
    if flags == ["--base", "yolo11-HaloAttention"]:
        assert cli("apply", "--target", str(package)).code == 0
    before = tree_hashes(package.parent)
    result = cli("apply", "--target", str(package), *flags)
    expected = message.format(v=package_version(package), p=package)
    assert (result.code, result.err) == (2, f"error: {expected}\n")
    assert tree_hashes(package.parent) == before


def test_a_hand_made_yaml_of_our_name_is_kept_and_ours_goes_beside_it(package: Path) -> None:
    """The tutorial's own cfg/models/11/yolo11-HaloAttention.yaml (no seal) is never overwritten: ours
    is planned as yolo11-HaloAttention-halo-patch.yaml (scale letter still works)."""
    from halo_patch.planning.options import ApplyOptions
    from halo_patch.planning.sources import choose_model_yaml as plan_model_yaml
    from halo_patch.target import find_target

    theirs = package / "cfg/models/11/yolo11-HaloAttention.yaml"
    theirs.write_text("# tutorial\n" + (package / "cfg/models/11/yolo11.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    model = plan_model_yaml(find_target(package), ApplyOptions(adopt=True))
    assert model.path == package / "cfg/models/11/yolo11-HaloAttention-halo-patch.yaml"
    assert model.build == "yolo11n-HaloAttention-halo-patch.yaml"
    assert plan_model_yaml(find_target(package)).path == package / "cfg/models/11/yolo11-HaloAttention-halo-patch.yaml"  # status finds it without the options


def test_status_follows_every_yaml_apply_wrote(package: Path) -> None:
    """A tree patched only with another base is fully applied; each yaml apply wrote has its row,
    an edited one is drifted (status exit 1), and revert removes every one of them."""
    pristine = tree_hashes(package.parent)
    assert cli("apply", "--target", str(package), "--base", "yolo11-seg").code == 0
    status = cli("status", "--target", str(package))
    assert status.code == 0 and "HaloAttention is fully applied." in status.out, status.out
    assert "ultralytics/cfg/models/11/yolo11-seg-HaloAttention.yaml" in status.out
    assert "yolo11-HaloAttention.yaml" not in status.out

    assert cli("apply", "--target", str(package), "--base", "yolov8", "--after", "4").code == 0
    v8 = package / "cfg/models/v8/yolov8-HaloAttention.yaml"
    rows = {line.split("│")[2].strip(): line for line in cli("status", "--target", str(package)).out.splitlines() if "model yaml" in line}
    assert set(rows) == {"ultralytics/cfg/models/11/yolo11-seg-HaloAttention.yaml", "ultralytics/cfg/models/v8/yolov8-HaloAttention.yaml"}
    assert all("applied" in line for line in rows.values())

    v8.write_text(v8.read_text(encoding="utf-8") + "# my note\n", encoding="utf-8")
    edited = cli("status", "--target", str(package))
    assert edited.code == 1 and "partially applied" in edited.out
    assert [l for l in edited.out.splitlines() if "yolov8-HaloAttention.yaml" in l and "drifted" in l and "changed since apply" in l]

    v8.write_text(v8.read_text(encoding="utf-8").removesuffix("# my note\n"), encoding="utf-8")
    assert cli("revert", "--target", str(package)).code == 0
    assert tree_hashes(package.parent) == pristine


def to_crlf(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))


CRLF_CASES = {  # (files made CRLF, --base given as a CRLF copy outside the tree?, the written yaml, tree's ending)
    "crlf user yaml, lf tree": ((), True, "cfg/models/custom/win-HaloAttention.yaml", b"\n"),
    "crlf base in the tree, lf tree": (("cfg/models/11/yolo11.yaml",), False, "cfg/models/11/yolo11-HaloAttention.yaml", b"\n"),
    "crlf tree": (("nn/tasks.py", "cfg/models/11/yolo11-pose.yaml"), False, "cfg/models/11/yolo11-pose-HaloAttention.yaml", b"\r\n"),
}


@pytest.mark.parametrize("case", sorted(CRLF_CASES))
def test_a_crlf_base_gives_a_yaml_with_the_trees_line_endings_that_stays_ours(case: str, package: Path, tmp_path: Path) -> None:
    """The written yaml has one line ending per line (the tree's, like every file apply creates), is
    sealed, and status, a second apply and revert all take it as halo-patch's own."""
    crlf_files, outside, written, newline = CRLF_CASES[case]
    for rel in crlf_files:
        to_crlf(package / rel)
    base = "yolo11-pose" if "nn/tasks.py" in crlf_files else "yolo11"
    if outside:
        base = str(tmp_path / "win.yaml")
        Path(base).write_bytes((package / "cfg/models/11/yolo11.yaml").read_bytes().replace(b"\n", b"\r\n"))
    pristine = tree_hashes(package.parent)
    assert cli("apply", "--target", str(package), "--base", base).code == 0
    data = (package / written).read_bytes()
    lines = data.split(newline)
    assert len(lines) > 30 and all(b"\r" not in line and b"\n" not in line for line in lines), data[:400]
    assert seal_matches(data, package / written)
    status = cli("status", "--target", str(package))
    assert status.code == 0 and "HaloAttention is fully applied." in status.out, status.out
    applied = tree_hashes(package.parent)
    again = cli("apply", "--target", str(package), "--base", base)
    assert again.code == 0 and tree_hashes(package.parent) == applied, again.out
    revert = cli("revert", "--target", str(package))
    assert revert.code == 0, revert.err
    assert tree_hashes(package.parent) == pristine


@pytest.mark.parametrize("name", ["my net [x]", "[bold]y"])
def test_a_yaml_name_with_rich_markup_is_printed_as_it_is(name: str, package: Path, tmp_path: Path) -> None:
    mine = tmp_path / f"{name}.yaml"
    shutil.copy(package / "cfg/models/11/yolo11.yaml", mine)
    result = cli("apply", "--target", str(package), "--base", str(mine))
    assert result.code == 0, result.err
    out = result.out.replace("\n", "")
    assert f"in ultralytics/cfg/models/custom/{name}-HaloAttention.yaml (from {name}.yaml, detect):" in out
    assert f"gives back {name}.yaml layer for layer, edge for edge." in out
    assert f"Build it with YOLO('{name}-HaloAttention.yaml') (scale n," in out
    assert (package / f"cfg/models/custom/{name}-HaloAttention.yaml").is_file()


@pytest.mark.parametrize("edit", ["note appended", "seal line removed"])
def test_an_edited_yaml_of_ours_is_drifted_not_a_hand_made_install(edit: str, package: Path) -> None:
    """Status names an edited yaml apply wrote once: drifted; never also as HaloAttention installed by hand."""
    assert cli("apply", "--target", str(package), "--base", "yolo11-seg").code == 0
    ours = package / "cfg/models/11/yolo11-seg-HaloAttention.yaml"
    data = ours.read_bytes()
    ours.write_bytes(data + b"# note\n" if edit == "note appended" else data.split(b"\n", 1)[1])
    status = cli("status", "--target", str(package))
    assert status.code == 1 and "partially applied" in status.out, status.out
    mentions = [l for l in status.out.splitlines() if "yolo11-seg-HaloAttention.yaml" in l]
    assert len(mentions) == 1 and "drifted" in mentions[0] and "changed since apply" in mentions[0], status.out
    assert "installed by hand" not in status.out and "kept as it is" not in status.out


def test_without_layout_apply_keeps_the_layout_the_tree_is_patched_with(package: Path) -> None:
    pristine = tree_hashes(package.parent)
    assert cli("apply", "--target", str(package), "--layout", "modules").code == 0
    more = cli("apply", "--target", str(package), "--base", "yolo11-pose")
    assert more.code == 0, more.err
    assert (package / "nn/modules/halo_attention.py").is_file() and not (package / "nn/Addmodules").exists()
    assert (package / "cfg/models/11/yolo11-pose-HaloAttention.yaml").is_file()
    switch = cli("apply", "--target", str(package), "--layout", "addmodules")
    assert switch.code == 2 and "--layout modules" in switch.err
    assert cli("revert", "--target", str(package)).code == 0
    assert tree_hashes(package.parent) == pristine
