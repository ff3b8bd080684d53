"""Packages for setuptools: veille's own, plus the top-level migrations/ folder installed as veille/migrations.

Everything else is in pyproject.toml. pyproject's setuptools table cannot add a folder from outside the
package tree to `packages.find`, and a wheel without the migrations cannot run `veille db upgrade`.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["veille*"]), "veille.migrations", "veille.migrations.versions"],
    package_dir={"veille.migrations": "migrations", "veille.migrations.versions": "migrations/versions"},
)
