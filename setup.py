"""Package layout: the folders at the repository root are subpackages of `portabind`
(design.md, "Layout"). setuptools cannot derive mapped package names from `find`, so they
are listed here from the tree; a new binding vendor folder needs no edit."""

from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "portabind": "portabind",
    "portabind.bindings": "bindings",
    "portabind.adapters": "adapters",
    "portabind.templates": "templates",
}

packages = [
    f"{name}.{sub}" if sub else name
    for name, folder in PACKAGE_DIRS.items()
    for sub in ["", *find_packages(folder)]
]

setup(package_dir=PACKAGE_DIRS, packages=packages)
