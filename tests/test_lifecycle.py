"""What pip and people do to a patched tree: reinstall, upgrade, uninstall, delete the state dir, edit
files. Real wheels in a site-packages layout; pip's own effect is replayed from the wheel's RECORD."""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

from cli_helpers import cli
from conftest import fetch_wheel, make_site_packages, tree_hashes

OLD, NEW = "8.4.150", "8.4.190"


def _record_files(site: Path) -> list[Path]:
    out = []
    for record in site.glob("ultralytics-*.dist-info/RECORD"):
        out += [site / row[0] for row in csv.reader(record.read_text().splitlines()) if row]
    return out


def pip_uninstall(site: Path) -> None:
    """What `pip uninstall ultralytics` removes: every RECORD-listed file, then dirs left empty."""
    files = _record_files(site)
    for path in files:
        path.unlink(missing_ok=True)
    for info in site.glob("ultralytics-*.dist-info"):
        shutil.rmtree(info)
    for d in sorted({p.parent for p in files}, key=lambda p: len(p.parts), reverse=True):
        while d != site and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            d = d.parent


def pip_install(site: Path, version: str, force_reinstall: bool = False) -> None:
    """`pip install [-U | --force-reinstall] ultralytics==version`: uninstall the old files, unpack the wheel."""
    pip_uninstall(site)
    with zipfile.ZipFile(fetch_wheel(version)) as zf:
        zf.extractall(site, [n for n in zf.namelist() if n.startswith("ultralytics/") or ".dist-info/" in n])


def _site(version: str, tmp_path: Path, name: str = "site") -> Path:
    return make_site_packages(version, tmp_path / name).parent


def test_force_reinstall_then_status_revert_apply(tmp_path: Path) -> None:
    site = _site(NEW, tmp_path)
    pristine = tree_hashes(site)
    assert cli("apply", "--target", str(site)).code == 0
    pip_install(site, NEW, force_reinstall=True)

    status = cli("status", "--target", str(site))
    assert status.code == 1 and "partially applied" in status.out
    assert "tasks.py is the installed wheel's original (matches its RECORD)" in status.out
    reverted = cli("revert", "--target", str(site))
    assert reverted.code == 0, reverted.err
    assert tree_hashes(site) == pristine

    assert cli("apply", "--target", str(site)).code == 0
    assert cli("status", "--target", str(site)).code == 0
    assert cli("revert", "--target", str(site)).code == 0
    assert tree_hashes(site) == pristine


def test_upgrade_then_status_revert_apply_never_writes_old_bytes(tmp_path: Path) -> None:
    fresh_new = tree_hashes(_site(NEW, tmp_path, "fresh"))
    for force in ([], ["--force"]):
        site = _site(OLD, tmp_path, f"site{len(force)}")
        assert cli("apply", "--target", str(site)).code == 0
        pip_install(site, NEW)

        status = cli("status", "--target", str(site))
        assert status.code == 1 and f"applied to Ultralytics {OLD}, the tree is now {NEW}" in status.out
        reverted = cli("revert", "--target", str(site), *force)
        assert reverted.code == 0, reverted.err
        assert f"the state records Ultralytics {OLD}, the tree is {NEW}" in reverted.out
        assert tree_hashes(site) == fresh_new  # the new release's bytes, our files gone

        assert cli("apply", "--target", str(site)).code == 0
        assert cli("status", "--target", str(site)).code == 0
        assert cli("revert", "--target", str(site)).code == 0
        assert tree_hashes(site) == fresh_new


def test_upgrade_while_applied_then_apply_again(tmp_path: Path) -> None:
    """apply -> upgrade -> apply: the new tasks.py gets our nodes; revert gives the new release back."""
    site = _site(OLD, tmp_path)
    fresh_new = tree_hashes(_site(NEW, tmp_path, "fresh"))
    assert cli("apply", "--target", str(site)).code == 0
    pip_install(site, NEW)
    again = cli("apply", "--target", str(site))
    assert again.code == 0, again.err
    assert cli("status", "--target", str(site)).code == 0
    assert cli("revert", "--target", str(site)).code == 0
    assert tree_hashes(site) == fresh_new


def test_uninstall_then_revert_cleans_up_the_leftovers(tmp_path: Path) -> None:
    site = _site(NEW, tmp_path)
    (site / "other_package").mkdir()
    (site / "other_package" / "__init__.py").write_text("")
    assert cli("apply", "--target", str(site)).code == 0
    pip_uninstall(site)
    assert (site / "ultralytics/nn/Addmodules/halo_attention.py").is_file()  # what pip leaves behind
    assert (site / ".halo-patch").is_dir()

    status = cli("status", "--target", str(site))
    assert status.code == 1 and f"Ultralytics is uninstalled here; `halo-patch revert --target {site}`" in status.out
    reverted = cli("revert", "--target", str(site))
    assert reverted.code == 0, reverted.err
    assert "uninstalled" in reverted.out
    assert sorted(p.name for p in site.iterdir()) == ["other_package"]
    assert cli("revert", "--target", str(site)).code == 2  # nothing of Ultralytics or ours is left


def test_deleted_state_dir_status_and_revert_by_recognition(tmp_path: Path) -> None:
    site = _site(NEW, tmp_path)
    pristine = tree_hashes(site)
    assert cli("apply", "--target", str(site)).code == 0
    shutil.rmtree(site / ".halo-patch")

    status = cli("status", "--target", str(site))
    assert status.code == 0 and "fully applied" in status.out and "no state dir" in status.out
    reverted = cli("revert", "--target", str(site))
    assert reverted.code == 0, reverted.err
    assert tree_hashes(site) == pristine


def test_corrupt_state_dir_is_named_and_recognition_still_works(tmp_path: Path) -> None:
    site = _site(NEW, tmp_path)
    pristine = tree_hashes(site)
    assert cli("apply", "--target", str(site)).code == 0
    manifest = site / ".halo-patch/manifest.json"
    manifest.write_text(manifest.read_text()[:50])
    status = cli("status", "--target", str(site))
    assert status.code == 1 and "state dir not trusted" in status.out and "applied" in status.out
    refused = cli("revert", "--target", str(site))
    assert refused.code == 2 and f"{manifest}: unreadable (not JSON)" in refused.err
    assert f"move {site / '.halo-patch'} aside" in refused.err
    shutil.rmtree(site / ".halo-patch")
    assert cli("revert", "--target", str(site)).code == 0
    assert tree_hashes(site) == pristine


def test_user_edits_survive_an_upgrade_style_revert(tmp_path: Path) -> None:
    """User lines beside ours in tasks.py are kept by revert, byte for byte."""
    site = _site(NEW, tmp_path)
    tasks = site / "ultralytics/nn/tasks.py"
    original = tasks.read_bytes()
    assert cli("apply", "--target", str(site)).code == 0
    patched = tasks.read_bytes()
    mine = b"\nMY_SETTING = 1  # kept\n"
    tasks.write_bytes(patched + mine)
    assert cli("revert", "--target", str(site)).code == 0
    assert tasks.read_bytes() == original + mine


def test_reapply_refuses_to_overwrite_an_edited_created_file(tmp_path: Path) -> None:
    site = _site(NEW, tmp_path)
    assert cli("apply", "--target", str(site)).code == 0
    module = site / "ultralytics/nn/Addmodules/halo_attention.py"
    module.write_text(module.read_text() + "# tuned by me\n")
    edited = tree_hashes(site)
    for flags in ([], ["--adopt"]):  # an edited module of ours is never overwritten, adopted or not
        result = cli("apply", "--target", str(site), *flags)
        assert result.code == 2 and result.err.startswith(f"error: {module}: ") and result.err.count("\n") == 1, result.err
        assert tree_hashes(site) == edited
    refused = cli("revert", "--target", str(site))
    assert refused.code == 2 and "changed since apply created it" in refused.err
    assert cli("revert", "--target", str(site), "--force").code == 0
    assert not module.exists()
