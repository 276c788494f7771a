"""Hand-made (tutorial) HaloAttention installs: status names them, apply refuses, `apply --adopt` takes
them over (one class, one import, one branch; old checkpoints still load, same outputs), revert is
byte-exact. Other tutorial modules in Addmodules are left alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_helpers import cli
from conftest import copy_installed, make_site_packages, tree_hashes
from tutorial_install import CBAM_BRANCH, install_cbam, install_tutorial
from warm_python import WarmPython

# (branch form, install options): every branch form, with the import styles people use.
INSTALLS = {
    "is": dict(form="is"),
    "set": dict(
        form="set",
        file_stem="halo_tutorial",
        package_import="from .halo_tutorial import HaloAttention\n",
        cbam_tasks_import="from .Addmodules import *\n",
    ),
    "tuple": dict(
        form="tuple",
        tasks_import="from ultralytics.nn.Addmodules.HaloAttention import HaloAttention\n",
        cbam_tasks_import="from ultralytics.nn.Addmodules import CBAM\n",
    ),
}
HEADERS = {"is": "elif m is HaloAttention:", "set": "elif m in {CBAM, HaloAttention}:", "tuple": "elif m in (HaloAttention,):"}
REFUSAL = (
    "error: {module}: a HaloAttention installed by hand is already there (listed above); run `halo-patch apply --adopt` "
    "to put halo-patch's HaloAttention in its place (your files are kept), or undo your edits first\n"
)
ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "YOLO_OFFLINE": "1"}


def run_in_tree(warm: WarmPython, root: Path, code: str, cwd: Path) -> str:
    """Python code in a fresh process that imports the tree at `root` first; its stdout (Ultralytics' notice
    of a new settings file may come first, when it is the first to use this test process's config dir)."""
    result = warm.run(code, cwd=cwd, env={**ENV, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# Built while the tutorial install is active: the model from the user's yaml, pickled whole (as
# Ultralytics checkpoints hold it), and its output on a fixed input.
SAVE_OLD = """
    import torch
    from ultralytics import YOLO
    torch.manual_seed(0)
    model = YOLO("yolo11n-HaloAttention.yaml").model.eval()
    halo = model.model[9]
    x = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        y = model(x)[0]
    torch.save({"model": model}, "old.pt")
    torch.save({"x": x, "y": y}, "io.pt")
    print(type(halo).__module__)
"""

# After adopt: the old checkpoint unpickles with the class it was trained with and gives the same
# output; everything built now gets halo-patch's class; the tutorial module is not imported.
CHECK_ADOPTED = """
    import sys, torch
    import ultralytics.nn.tasks as tasks
    print("tasks", tasks.HaloAttention.__module__)
    print("eager", sorted(m for m in sys.modules if m.startswith("ultralytics.nn.Addmodules.")), "einops" in sys.modules)
    from ultralytics import YOLO
    for name in ("yolo11n-HaloAttention.yaml", "yolo11n-HaloAttention-halo-patch.yaml"):
        print("built", name, type(YOLO(name).model.model[9]).__module__)
    old = torch.load("old.pt", weights_only=False)["model"]
    io = torch.load("io.pt")
    with torch.no_grad():
        print("same output", torch.equal(old(io["x"])[0], io["y"]), type(old.model[9]).__module__)
    print("tasks after load", tasks.HaloAttention.__module__)
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    copy_installed(tmp_path / "tree")
    return tmp_path / "tree"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("name", sorted(INSTALLS))
def test_tutorial_install_is_named_refused_adopted_and_reverted(name: str, tree: Path, warm_python: WarmPython) -> None:
    options = INSTALLS[name]
    package = tree / "ultralytics"
    install_tutorial(package, **options)
    module = package / "nn/Addmodules" / f"{options.get('file_stem', 'HaloAttention')}.py"
    user_yaml = package / "cfg/models/11/yolo11-HaloAttention.yaml"
    old_module = run_in_tree(warm_python, tree, SAVE_OLD, cwd=tree.parent).splitlines()[-1]
    assert old_module == f"ultralytics.nn.Addmodules.{module.stem}"
    pristine = tree_hashes(tree)

    status = cli("status", "--target", str(tree))
    assert status.code == 1, status.out
    assert (
        f"  in use  HaloAttention module  ultralytics/nn/Addmodules/{module.name}: defines class HaloAttention; "
        "the tutorial's module: inverted padding mask (border blocks attend only to zero padding; attention never learns); "
        "asserts H and W divisible by the block: crashes on other sizes (e.g. 640x480 images, P5 20x15)\n"
    ) in status.out
    assert f"  kept    parse_model branch  ultralytics/nn/tasks.py: `{HEADERS[name]}` builds it as halo-patch does (reused)\n" in status.out
    assert "  kept    model yaml  ultralytics/cfg/models/11/yolo11-HaloAttention.yaml: uses HaloAttention; kept as it is\n" in status.out
    assert "HaloAttention is installed by hand, not by halo-patch." in status.out

    for flags in ([], ["--check"], ["--dry-run"]):
        refused = cli("apply", "--target", str(tree), *flags)
        assert (refused.code, refused.err) == (2, REFUSAL.format(module=module)), refused.err
        assert "HaloAttention installed by hand:" in refused.out
        assert tree_hashes(tree) == pristine

    adopted = cli("apply", "--target", str(tree), "--adopt")
    assert adopted.code == 0, adopted.err
    assert "Build it with YOLO('yolo11n-HaloAttention-halo-patch.yaml')" in adopted.out
    assert tree_hashes(tree)[module.relative_to(tree).as_posix()] == pristine[module.relative_to(tree).as_posix()]
    assert tree_hashes(tree)[user_yaml.relative_to(tree).as_posix()] == pristine[user_yaml.relative_to(tree).as_posix()]

    init = _lines(package / "nn/Addmodules/__init__.py")
    assert init == ["from .CBAM import *", "from .halo_attention import HaloAttention  # halo-patch"]
    tasks = _lines(package / "nn/tasks.py")
    halo_imports = [l for l in tasks if l.startswith("from ") and ("HaloAttention" in l or l.endswith("Addmodules import *"))]
    expected_import = {
        "is": ["from ultralytics.nn.Addmodules import *"],
        "set": ["from .Addmodules import *"],
        "tuple": ["from ultralytics.nn.Addmodules import HaloAttention  # halo-patch"],
    }[name]
    assert halo_imports == expected_import
    assert sum("HaloAttention" in l and l.lstrip().startswith(("if m", "elif m")) for l in tasks) == 1
    assert CBAM_BRANCH.splitlines()[0] in tasks or name == "set"

    out = run_in_tree(warm_python, tree, CHECK_ADOPTED, cwd=tree.parent)
    assert "tasks ultralytics.nn.Addmodules.halo_attention\n" in out
    assert f"eager ['ultralytics.nn.Addmodules.CBAM', 'ultralytics.nn.Addmodules.halo_attention'] False\n" in out
    assert "built yolo11n-HaloAttention.yaml ultralytics.nn.Addmodules.halo_attention\n" in out
    assert "built yolo11n-HaloAttention-halo-patch.yaml ultralytics.nn.Addmodules.halo_attention\n" in out
    assert f"same output True {old_module}\n" in out
    assert "tasks after load ultralytics.nn.Addmodules.halo_attention\n" in out

    status = cli("status", "--target", str(tree))
    assert status.code == 0 and "HaloAttention is fully applied." in status.out
    assert f"  kept    HaloAttention module  ultralytics/nn/Addmodules/{module.name}: defines class HaloAttention, kept but no longer imported" in status.out
    again = cli("apply", "--target", str(tree))
    assert again.code == 0 and "already applied" in again.out

    reverted = cli("revert", "--target", str(tree))
    assert reverted.code == 0, reverted.err
    assert tree_hashes(tree) == pristine


def test_halo_in_the_base_modules_set_is_refused_even_with_adopt(tree: Path) -> None:
    """The first branch passes (c1, c2, *args[1:]): not what HaloAttention takes; --adopt will not guess."""
    package = tree / "ultralytics"
    install_tutorial(package, form="base")
    pristine = tree_hashes(tree)
    status = cli("status", "--target", str(tree))
    assert "  in use  parse_model branch  ultralytics/nn/tasks.py: `if m in base_modules:` builds it with other arguments than halo-patch's\n" in status.out
    adopted = cli("apply", "--target", str(tree), "--adopt")
    assert adopted.code == 2
    assert adopted.err == (
        f"error: {package}/nn/tasks.py (Ultralytics 8.4.190): parse_model's `if m in base_modules:` branch already builds "
        "HaloAttention with other arguments than halo-patch's (expected `c2 = ch[f]; args = [c2, *args]`); "
        "take HaloAttention out of that branch, then apply again\n"
    )
    assert tree_hashes(tree) == pristine


def test_adopt_refuses_a_module_file_holding_other_classes(tree: Path) -> None:
    package = tree / "ultralytics"
    install_tutorial(package, form="is")
    module = package / "nn/Addmodules/HaloAttention.py"
    module.write_text(module.read_text() + "\n\nclass SimAM(nn.Module):\n    pass\n")
    pristine = tree_hashes(tree)
    adopted = cli("apply", "--target", str(tree), "--adopt")
    assert adopted.code == 2
    assert adopted.err == (
        f"error: {module}: also defines SimAM, which --adopt would stop importing with your HaloAttention; "
        "move them to their own file (and import that), then run apply --adopt again\n"
    )
    assert tree_hashes(tree) == pristine


@pytest.mark.parametrize("layout", ["addmodules", "modules"])
def test_other_tutorial_modules_are_untouched(layout: str, tree: Path, warm_python: WarmPython) -> None:
    """CBAM with its own file, star import and `elif m is CBAM:`: apply adds only ours, revert only takes ours out."""
    package = tree / "ultralytics"
    install_cbam(package)
    cbam_init = (package / "nn/Addmodules/__init__.py").read_bytes()
    pristine = tree_hashes(tree)
    status = cli("status", "--target", str(tree))
    assert status.code == 1 and "installed by hand" not in status.out
    applied = cli("apply", "--target", str(tree), "--layout", layout)
    assert applied.code == 0, applied.err
    after = tree_hashes(tree)
    changed = {p for p in after if after[p] != pristine.get(p) and not p.startswith(".halo-patch")}
    tasks = _lines(package / "nn/tasks.py")
    assert CBAM_BRANCH.splitlines()[0] in tasks and "        elif m is HaloAttention:  # halo-patch" in tasks
    common = {"ultralytics/nn/tasks.py", "ultralytics/cfg/models/11/yolo11-HaloAttention.yaml"}
    if layout == "addmodules":
        assert changed == common | {"ultralytics/nn/Addmodules/__init__.py", "ultralytics/nn/Addmodules/halo_attention.py"}
        assert _lines(package / "nn/Addmodules/__init__.py") == ["from .CBAM import *", "from .halo_attention import HaloAttention  # halo-patch"]
        assert [l for l in tasks if "HaloAttention" in l and l.startswith("from ")] == []  # the star import brings ours
        assert [l for l in tasks if "Addmodules" in l] == ["from ultralytics.nn.Addmodules import *"]
    else:
        assert changed == common | {"ultralytics/nn/modules/__init__.py", "ultralytics/nn/modules/halo_attention.py"}
        assert (package / "nn/Addmodules/__init__.py").read_bytes() == cbam_init
        assert [l for l in tasks if "HaloAttention" in l and l.startswith("from ")] == ["from ultralytics.nn.modules import HaloAttention  # halo-patch"]
    out = run_in_tree(
        warm_python,
        tree,
        """
        import ultralytics.nn.tasks as t
        print(t.CBAM.__module__, t.HaloAttention.__module__)
        """,
        cwd=tree.parent,
    )
    ours = "ultralytics.nn.modules.halo_attention" if layout == "modules" else "ultralytics.nn.Addmodules.halo_attention"
    assert out.splitlines()[-1] == f"ultralytics.nn.Addmodules.CBAM {ours}"  # last: a first-run settings notice may come first
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine


def test_readopt_after_a_hand_edit_keeps_the_original_backups(tree: Path) -> None:
    """The user puts their import back after adopt: status says it is in use again, apply --adopt takes
    it out again, and revert still gives the tree as it was before the first adopt."""
    package = tree / "ultralytics"
    install_tutorial(package, form="tuple", tasks_import="from ultralytics.nn.Addmodules.HaloAttention import HaloAttention\n")
    pristine = tree_hashes(tree)
    assert cli("apply", "--target", str(tree), "--adopt").code == 0
    init = package / "nn/Addmodules/__init__.py"
    init.write_text(init.read_text() + "from .HaloAttention import *\n")
    status = cli("status", "--target", str(tree))
    assert status.code == 1 and "  in use  Addmodules import  ultralytics/nn/Addmodules/__init__.py: from .HaloAttention import *\n" in status.out
    assert cli("apply", "--target", str(tree)).code == 2
    assert cli("apply", "--target", str(tree), "--adopt").code == 0
    assert _lines(init) == ["from .CBAM import *", "from .halo_attention import HaloAttention  # halo-patch"]
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine


def test_adopt_into_the_modules_layout(tree: Path, warm_python: WarmPython) -> None:
    """--adopt --layout modules: the user's class leaves Addmodules' imports, ours comes from nn/modules."""
    package = tree / "ultralytics"
    install_tutorial(package, form="is")
    old_module = run_in_tree(warm_python, tree, SAVE_OLD, cwd=tree.parent).splitlines()[-1]
    pristine = tree_hashes(tree)
    adopted = cli("apply", "--target", str(tree), "--adopt", "--layout", "modules")
    assert adopted.code == 0, adopted.err
    assert _lines(package / "nn/Addmodules/__init__.py") == ["from .CBAM import *"]
    tasks = _lines(package / "nn/tasks.py")
    assert [l for l in tasks if l.startswith("from ") and ("HaloAttention" in l or "Addmodules" in l)] == [
        "from ultralytics.nn.modules import HaloAttention  # halo-patch",
        "from ultralytics.nn.Addmodules import *",
    ]
    out = run_in_tree(warm_python, tree, CHECK_ADOPTED, cwd=tree.parent)
    assert "tasks ultralytics.nn.modules.halo_attention\n" in out
    assert "eager ['ultralytics.nn.Addmodules.CBAM'] False\n" in out
    assert "built yolo11n-HaloAttention-halo-patch.yaml ultralytics.nn.modules.halo_attention\n" in out
    assert f"same output True {old_module}\n" in out
    assert cli("status", "--target", str(tree)).code == 0
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine


def test_a_named_import_shared_with_cbam_is_kept_as_the_one_import(tree: Path) -> None:
    """`from ultralytics.nn.Addmodules import CBAM, HaloAttention`: kept (it now brings ours); a second run changes nothing."""
    package = tree / "ultralytics"
    install_tutorial(package, form="is", cbam_tasks_import="from ultralytics.nn.Addmodules import CBAM, HaloAttention\n")
    pristine = tree_hashes(tree)
    assert cli("status", "--target", str(tree)).code == 1
    assert cli("apply", "--target", str(tree)).code == 2
    assert cli("apply", "--target", str(tree), "--adopt").code == 0
    tasks = _lines(package / "nn/tasks.py")
    assert [l for l in tasks if "Addmodules" in l] == ["from ultralytics.nn.Addmodules import CBAM, HaloAttention"]
    status = cli("status", "--target", str(tree))
    assert status.code == 0 and "  in use  " not in status.out
    again = cli("apply", "--target", str(tree))
    assert again.code == 0 and "already applied" in again.out
    assert cli("revert", "--target", str(tree)).code == 0
    assert tree_hashes(tree) == pristine


@pytest.mark.parametrize("version", ["8.3.40", "8.4.70"])
def test_adopt_on_older_releases(version: str, tmp_path: Path) -> None:
    """The set-literal chain (8.3.40) and the restricted-loading guard (8.4.70): adopt, then revert byte-exact;
    HaloAttention in the first `m in {...}` set is refused."""
    package = make_site_packages(version, tmp_path / "tree")
    install_tutorial(package, form="tuple")
    pristine = tree_hashes(package.parent)
    assert cli("apply", "--target", str(package)).code == 2
    assert cli("apply", "--target", str(package), "--adopt").code == 0
    assert cli("status", "--target", str(package)).code == 0
    assert cli("revert", "--target", str(package)).code == 0
    assert tree_hashes(package.parent) == pristine

    based = make_site_packages(version, tmp_path / "based")
    install_tutorial(based, form="base")
    refused = cli("apply", "--target", str(based), "--adopt")
    header = "if m in base_modules:" if version == "8.4.70" else "if m in {HaloAttention, Classify, ...}:"
    assert refused.code == 2 and refused.err.count("\n") == 1
    assert f"parse_model's `{header}` branch already builds HaloAttention with other arguments" in refused.err
