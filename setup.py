"""The build step pyproject.toml cannot express: compile walsim's C programs
with ``make programs`` and bundle them, libwalsim-disk.so, libwalsim-bind.so, the shipped
scenarios and the WAL data sets into the package as ``walsim/_bundle/``
(``bin/``, ``lib/``, ``scenarios/``, ``data/``), where
:mod:`walsim.core.paths` looks for them.  The wheel is therefore
platform-specific.  Set ``WALSIM_PIP_NO_PROGRAMS=1`` to build a pure-Python
package that finds the programs through ``WALSIM_BINDIR`` or ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

TOP = Path(__file__).resolve().parent
PROGRAMS = ("walsim-netd", "walsim-sender", "walsim-receiver", "walsim-diskctl", "walsim-probe",
            "walsim-sampler")
LIBRARIES = ("libwalsim-disk.so", "libwalsim-bind.so")


def _bundle_wanted() -> bool:
    return not os.environ.get("WALSIM_PIP_NO_PROGRAMS")


class BuildWithPrograms(build_py):
    """build_py, then ``make programs`` and the bundle."""

    def run(self) -> None:
        # setuptools copies by timestamp and never deletes: start from nothing so
        # that a module removed from the source is not shipped from an old build.
        shutil.rmtree(Path(self.build_lib) / "walsim", ignore_errors=True)
        super().run()
        if not _bundle_wanted():
            return
        build = TOP / "build"
        subprocess.run(["make", "-C", str(TOP), "-j2", "programs", f"BUILD={build}"], check=True)
        bundle = Path(self.build_lib) / "walsim" / "_bundle"
        for sub in ("bin", "lib", "scenarios", "data"):
            (bundle / sub).mkdir(parents=True, exist_ok=True)
        for name in PROGRAMS:
            shutil.copy2(build / "bin" / name, bundle / "bin" / name)
        for name in LIBRARIES:
            shutil.copy2(build / "lib" / name, bundle / "lib" / name)
        for toml in sorted((TOP / "scenarios").glob("*.toml")):
            shutil.copy2(toml, bundle / "scenarios" / toml.name)
        for sub in ("explore", "managers"):    # fault spaces; HA manager scenarios
            (bundle / "scenarios" / sub).mkdir(exist_ok=True)
            for toml in sorted((TOP / "scenarios" / sub).glob("*.toml")):
                shutil.copy2(toml, bundle / "scenarios" / sub / toml.name)
        shutil.copytree(TOP / "tests" / "data" / "wal", bundle / "data" / "wal", dirs_exist_ok=True)
        for wal in sorted((TOP / "tests" / "data").glob("wal-[0-9]*")):   # the other majors' WAL
            shutil.copytree(wal, bundle / "data" / wal.name, dirs_exist_ok=True)


class PlatformDistribution(Distribution):
    """The bundle holds ELF programs: the wheel is not pure Python."""

    def has_ext_modules(self) -> bool:
        return _bundle_wanted()


setup(cmdclass={"build_py": BuildWithPrograms}, distclass=PlatformDistribution,
      options={"build": {"build_base": "build/python"}, "egg_info": {"egg_base": "build/python"}})
