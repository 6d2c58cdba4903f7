"""The one compiled module, filters/_textkernel.c (the filters' word loops); everything else is
in pyproject.toml. `pip install -e .` builds it in place."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("filters._textkernel", ["filters/_textkernel.c"], extra_compile_args=["-O2", "-Wall"])])
