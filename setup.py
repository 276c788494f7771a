"""Package discovery (metadata lives in pyproject.toml).

Every subpackage of halo_patch is discovered, never listed by hand: a wheel once shipped without
halo_patch/commands/. The top-level templates/ folder ships inside the wheel as halo_patch.templates.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["halo_patch", "halo_patch.*"]), "halo_patch.templates"],
    package_dir={"halo_patch.templates": "templates"},
)
