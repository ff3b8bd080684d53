"""Packages for setuptools: veille's own, plus the top-level migrations/ folder installed as veille/migrations.

Everything else is in pyproject.toml. pyproject's setuptools table cannot add a folder from outside the
package tree to `packages.find`, and a wheel without the migrations cannot run `veille db upgrade`.
"""

from setuptools import find_namespace_packages, setup

setup(
    # Namespace packages: the data folders (locale, scoring/model, web/static...) are packages to setuptools,
    # which otherwise warns that their files "would be ignored" while it installs them through package-data.
    packages=[
        *find_namespace_packages(include=["veille*"], exclude=["*.__pycache__"]),
        "veille.migrations",
        "veille.migrations.versions",
    ],
    package_dir={"veille.migrations": "migrations", "veille.migrations.versions": "migrations/versions"},
)
