"""Generation engines behind one interface (see `base`).

Engines register by name; `get_engine("simulated", model=…)` builds one. Engines whose libraries
only some machines have (vllm) import them inside their constructor, so this package always imports.
"""

from dataengine.engines.base import (
    ENGINES,
    Completion,
    Engine,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
    get_engine,
    register_engine,
)

__all__ = [
    "ENGINES",
    "Completion",
    "Engine",
    "GenerationRequest",
    "GenerationResult",
    "SamplingParams",
    "get_engine",
    "register_engine",
]
