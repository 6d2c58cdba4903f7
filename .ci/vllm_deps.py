"""Print the project's runtime dependencies for `.venv-vllm`, one per line.

vLLM's CPU wheel pins fastapi below what Prefect needs, so `.venv-vllm` installs the project with
`--no-deps` plus this list: pyproject's dependencies without Prefect (flows are not run there) and
without torch (vLLM brings its own pinned build), plus the test tools.
"""

import re
import tomllib
from pathlib import Path

SKIP = {"prefect", "torch"}
pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
project = pyproject["project"]
deps = list(project["dependencies"])
deps += [d for d in project["optional-dependencies"]["dev"] if re.split(r"[<>=!~\[ ]", d)[0] in ("pytest", "pytest-timeout")]
for dep in deps:
    if re.split(r"[<>=!~\[ ;]", dep)[0].lower() not in SKIP:
        print(dep)
