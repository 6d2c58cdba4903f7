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

# Lazy factories: importing this package never imports torch, transformers, httpx or vllm.
register_engine("simulated", "dataengine.engines.simulated:SimulatedEngine")
register_engine("openai", "dataengine.engines.openai_engine:OpenAIEngine")
register_engine("transformers", "dataengine.engines.transformers_engine:TransformersEngine")
register_engine("vllm", "dataengine.engines.vllm_engine:VLLMEngine")

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
