"""Index remapping on every model yaml the installed Ultralytics ships: for any insertion points, the
written yaml is the base graph with HaloAttention spliced in after each point, and nothing else moved.

The oracle here is independent of halo_patch.model_yaml: the base rows are read with yaml.safe_load, the
default placement is the README's rule written out here, and the graph check inserts node objects into a
Python list and compares who reads whom by object identity.
"""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import RELEASES, copy_installed, make_site_packages
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halo_patch.model_yaml import list_bases, plan_model_yaml
from halo_patch.target import find_target

# A pristine copy of the installed release (module level: the bases parametrize the tests).
_TREE = Path(tempfile.mkdtemp(prefix="halo-patch-bases-"))
atexit.register(shutil.rmtree, _TREE, True)
TARGET = find_target(copy_installed(_TREE))  # read only: planning writes nothing
BASES = {b.name: b for b in list_bases(TARGET)}
MARK = "inserted by halo-patch"
POOLING = {"SPPF", "SPP", "SPPELAN"}


@functools.lru_cache(maxsize=None)
def load(path: Path) -> tuple[dict, list]:
    """A base yaml's data and its rows (backbone, then head), as PyYAML's safe loader reads them (read-only)."""
    model = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return model, list(model["backbone"]) + list(model.get("head") or [])


def default_after(model: dict) -> int:
    """README: without --after, the last backbone layer before SPPF (SPP, SPPELAN), or the end of the backbone."""
    pooling = [i for i, r in enumerate(model["backbone"]) if r[2] in POOLING]
    return pooling[0] - 1 if pooling and pooling[0] > 0 else len(model["backbone"]) - 1


def sources(rows: list, i: int) -> list[int]:
    f = rows[i][0]
    return [i + x if x < 0 else x for x in (f if isinstance(f, list) else [f])]


def expected_readers(base_rows: list, after: set[int]) -> tuple[list[object], list[list[object]]]:
    """(the node list after insertion, what each node must read), by object identity."""
    nodes = [object() for _ in base_rows]
    halo = {a: object() for a in after}
    image = object()
    order: list[object] = []
    reads: dict[int, list[object]] = {}
    for i, node in enumerate(nodes):
        order.append(node)
        reads[id(node)] = [image if s == -1 else halo.get(s, nodes[s]) for s in sources(base_rows, i)]
        if i in after:
            order.append(halo[i])
            reads[id(halo[i])] = [node]
    return order, [reads[id(n)] for n in order], image, set(map(id, halo.values()))


def assert_spliced(base_rows: list, new_rows: list, after: set[int], args: list) -> None:
    order, want, image, halo_ids = expected_readers(base_rows, after)
    assert len(new_rows) == len(order)
    base_iter = iter(base_rows)
    for k, (node, must_read) in enumerate(zip(order, want)):
        got = [image if s == -1 else order[s] for s in sources(new_rows, k)]
        assert all(s < k for s in sources(new_rows, k)), k
        assert got == must_read, f"layer {k} reads the wrong layers"
        if id(node) in halo_ids:
            assert new_rows[k] == [-1, 1, "HaloAttention", args]
        else:
            base_row = next(base_iter)
            assert new_rows[k][1:] == base_row[1:]
            # the form of each index is kept: relative stays relative, absolute stays absolute
            f_new, f_old = new_rows[k][0], base_row[0]
            pairs = zip(f_new, f_old) if isinstance(f_old, list) else [(f_new, f_old)]
            assert all((a < 0) == (b < 0) for a, b in pairs)


def new_position(after: set[int], i: int) -> int:
    """Where base layer `i` lands: shifted by one for each row inserted after an earlier layer."""
    return i + sum(1 for b in after if b < i)


def new_index(after: set[int], a: int) -> int:
    """Where the row inserted after base layer `a` lands: right after that layer's new position."""
    return new_position(after, a) + 1


def assert_text_kept(base_text: str, new_text: str, base_rows: list, after: set[int]) -> None:
    """Every line of the base survives in order, changed only in `from` numbers and `# N` comments."""
    lines = new_text.splitlines()[4:]  # seal + 3 header lines
    inserted = [l for l in lines if l.endswith(MARK)]
    assert [int(re.search(r"# (\d+) " + MARK, l).group(1)) for l in inserted] == [new_index(after, a) for a in sorted(after)]
    kept = [l for l in lines if not l.endswith(MARK)]
    base_lines = base_text.splitlines()
    assert len(kept) == len(base_lines)
    digits = re.compile(r"-?\d+")
    for old, new in zip(base_lines, kept):
        if re.match(r"^\s*-", old):
            assert digits.sub("0", old) == digits.sub("0", new)  # a row: the same text but for numbers
        else:
            assert old == new  # comments, blank lines, nc/scales: byte for byte
    row_lines = [l for l in kept if re.match(r"^\s*-\s*\[", l)]
    for i, line in enumerate(row_lines):
        hit = re.search(r"\]\s*#\s*(\d+)(?!\d)", line)
        old_hit = re.search(r"\]\s*#\s*(\d+)(?!\d)", [l for l in base_lines if re.match(r"^\s*-\s*\[", l)][i])
        if old_hit and int(old_hit.group(1)) == i:
            assert int(hit.group(1)) == new_position(after, i)


def test_the_installed_release_ships_the_families() -> None:
    assert {"yolo11", "yolo11-seg", "yolo11-pose", "yolo11-obb", "yolo11-cls", "yolov8"} <= set(BASES)
    graphs = set()  # every model yaml of the tree with a backbone list is a base, by its file stem
    for path in (TARGET.package_dir / "cfg/models").rglob("*.yaml"):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if isinstance(data, dict) and isinstance(data.get("backbone"), list) and data["backbone"]:
            graphs.add(path.stem)
    assert set(BASES) == graphs and len(graphs) > 40


@pytest.mark.parametrize("name", sorted(BASES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_remapped_graph_is_the_base_graph_with_halo_spliced_in(name: str, data) -> None:
    base = BASES[name]
    model, rows = load(base.path)
    after = data.draw(st.sets(st.integers(0, len(rows) - 2), min_size=1, max_size=min(4, len(rows) - 1)), label="after")
    args = data.draw(st.sampled_from([[2, 1], [4, 2], [2, 1, 32, 4], [1, 0]]), label="args")
    plan = plan_model_yaml(TARGET, name, tuple(sorted(after, reverse=True)), tuple(args))
    written = yaml.safe_load(plan.text)
    new_rows = written["backbone"] + (written.get("head") or [])
    assert_spliced(rows, new_rows, after, args)
    n_backbone = len(model["backbone"]) + sum(1 for a in after if a < len(model["backbone"]))
    assert len(written["backbone"]) == n_backbone
    assert {k: v for k, v in written.items() if k not in ("backbone", "head")} == {
        k: v for k, v in model.items() if k not in ("backbone", "head")
    }
    assert_text_kept(Path(base.path).read_text(encoding="utf-8"), plan.text, rows, after)
    assert [layer.index for layer in plan.inserted] == [new_index(after, a) for a in sorted(after)]


def test_a_relative_index_that_crosses_the_new_row_is_rewritten() -> None:
    """RT-DETR's `[[-2, -1], 1, Concat]` (layer 10 reads 8 and 9): after 9 it must read 8 and the new layer."""
    plan = plan_model_yaml(TARGET, "rtdetr-resnet50", (9,), (2, 1))
    rows = yaml.safe_load(plan.text)["head"]
    assert rows[5] == [-1, 1, "HaloAttention", [2, 1]] and rows[6] == [[-3, -1], 1, "Concat", [1]]
    plan = plan_model_yaml(TARGET, "rtdetr-resnet50", (8,), (2, 1))
    rows = yaml.safe_load(plan.text)["head"]  # 8's readers (the Concat) now read the new layer at 9
    assert rows[4] == [-1, 1, "HaloAttention", [2, 1]] and rows[6] == [[-2, -1], 1, "Concat", [1]]


def test_every_reader_of_the_layer_reads_halo_instead() -> None:
    """After yolo11's layer 10 (C2PSA, read by the Upsample and by the P5 Concat): both now read layer 11."""
    plan = plan_model_yaml(TARGET, "yolo11", (10,), (2, 1))
    written = yaml.safe_load(plan.text)
    assert written["backbone"][11] == [-1, 1, "HaloAttention", [2, 1]]
    assert written["head"][0][:3] == [-1, 1, "nn.Upsample"] and written["head"][10] == [[-1, 11], 1, "Concat", [1]]
    assert written["head"][-1][0] == [17, 20, 23]
    assert plan.inserted[0].readers == ((12, "nn.Upsample"), (22, "Concat"))


def test_the_oracle_rejects_a_shift_that_ignores_relative_indices() -> None:
    """The naive remap (shift absolute indices, leave relative ones) is caught: the test can fail."""
    _, rows = load(BASES["rtdetr-resnet50"].path)
    naive = []
    for i, row in enumerate(rows):
        f = row[0]
        shift = (lambda x: x + 1 if x >= 10 else x)
        naive.append([[shift(x) for x in f] if isinstance(f, list) else shift(f), *row[1:]])
        if i == 9:
            naive.append([-1, 1, "HaloAttention", [2, 1]])
    with pytest.raises(AssertionError):
        assert_spliced(rows, naive, {9}, [2, 1])


def test_channels_are_known_for_every_shipped_layer() -> None:
    """apply reports input channels without torch: every layer of every shipped yaml has a rule, and
    every single-tensor layer gets a width (CBLinear outputs a list of tensors)."""
    from halo_patch.model_yaml.channels import compute_output_channels, list_known_modules, read_scales

    for base in BASES.values():
        model, rows = load(base.path)
        assert {r[2] for r in rows} <= list_known_modules(), base.name
        for scale in read_scales(model):
            widths = compute_output_channels(model, rows, scale)
            assert all(w is not None for w, r in zip(widths[:-1], rows) if r[2] != "CBLinear"), (base.name, scale)
    model, rows = load(BASES["yolo11"].path)
    assert {s: compute_output_channels(model, rows, s)[8] for s in "nsmlx"} == {
        "n": 256, "s": 512, "m": 512, "l": 512, "x": 768  # make_divisible(min(1024, cap) * width, 8)
    }


LAYOUTS = {
    "crlf, no final newline": (
        "# mine\r\nnc: 2\r\nbackbone:\r\n  - [-1, 1, Conv, [16, 3, 2]] # 0\r\n  - [-1, 1, Conv, [32, 3, 2]] # 1\r\n"
        "head:\r\n  - [[-1, 0], 1, Concat, [1]] # 2\r\n  - [-1, 1, Classify, [nc]] # 3",
        "  - [-1, 1, HaloAttention, [2, 1]] # 1 inserted by halo-patch\n",  # planned as LF: apply writes the tree's endings
    ),
    "flow-style lists": (
        "nc: 2\nbackbone: [[-1, 1, Conv, [16, 3, 2]], [-1, 1, Conv, [32, 3, 2]]]\nhead: [[[-1, 0], 1, Concat, [1]], [-1, 1, Classify, [nc]]]\n",
        "[-1, 1, Conv, [16, 3, 2]], [-1, 1, HaloAttention, [2, 1]], [-1, 1, Conv, [32, 3, 2]]",
    ),
    "block-style rows": (
        "nc: 2\nbackbone:\n- - -1\n  - 1\n  - Conv\n  - [16, 3, 2]\n- [-1, 1, Conv, [32, 3, 2]]\nhead:\n- - [-1, 0]\n  - 1\n"
        "  - Concat\n  - [1]\n- [-1, 1, Classify, [nc]]\n",
        "  - [16, 3, 2]\n- [-1, 1, HaloAttention, [2, 1]] # 1 inserted by halo-patch\n- [-1, 1, Conv, [32, 3, 2]]\n",
    ),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_users_yaml_in_any_layout_is_edited_in_place(layout: str, tmp_path: Path) -> None:
    text, snippet = LAYOUTS[layout]
    mine = tmp_path / "net.yaml"
    mine.write_bytes(text.encode())
    plan = plan_model_yaml(TARGET, str(mine), (0,), (2, 1))
    assert snippet in plan.text
    rows = yaml.safe_load(plan.text)
    assert rows["backbone"][1] == [-1, 1, "HaloAttention", [2, 1]] and rows["head"][0][0] == [-1, 1]
    assert plan.path == TARGET.package_dir / "cfg/models/custom/net-HaloAttention.yaml"
    assert (plan.build, plan.scale_note) == ("net-HaloAttention.yaml", "no scales: widths and depths as written")


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_every_base_of_every_tested_release_plans_and_proves(version: str, tmp_path: Path) -> None:
    """Older releases' yamls (other comments, fewer families) plan at the default placement and after
    the first and the next-to-last layer; the families a release has are listed by `bases`."""
    target = find_target(make_site_packages(version, tmp_path / "site"))
    bases = {b.name: b for b in list_bases(target)}
    assert {"yolo11", "yolo11-seg", "yolo11-pose", "yolo11-obb", "yolo11-cls", "yolov8"} <= set(bases)
    assert ("yolo12" in bases) == (tuple(map(int, version.split("."))) >= (8, 3, 100))
    assert ("yolo26" in bases) == (tuple(map(int, version.split("."))) >= (8, 4, 0))
    for name, base in bases.items():
        model, rows = load(base.path)
        for after in ((), tuple(sorted({0, len(rows) - 2}))):
            plan = plan_model_yaml(target, name, after, (2, 1))
            written = yaml.safe_load(plan.text)
            assert_spliced(rows, written["backbone"] + (written.get("head") or []), set(after or (default_after(model),)), [2, 1])
    assert plan_model_yaml(target, "yolo11", (), (2, 1)).inserted[0].index == 9
