"""Readability, language-mixing and format filters: pure functions, no I/O, nothing of ours imported.

Each filter scores a batch of traces (`score`) and decides a verdict from the scores and typed
thresholds (`decide`), so verdicts can be re-decided without re-scoring. Registry by name:

>>> sorted(filter_names())
['format', 'language_mixing', 'readability']
"""

from filters.base import (
    FILTERS,
    FilterInput,
    FilterResult,
    FilterSpec,
    Thresholds,
    as_input,
    filter_names,
    get_filter,
    register_filter,
    run_filters,
    safe_decide,
    score_batch,
)
from filters.format import FormatThresholds
from filters.language_mixing import LanguageMixingThresholds, detect_language, language_consistency
from filters.readability import ReadabilityThresholds

__all__ = [
    "FILTERS", "FilterInput", "FilterResult", "FilterSpec", "FormatThresholds", "LanguageMixingThresholds",
    "ReadabilityThresholds", "Thresholds", "as_input", "detect_language", "filter_names", "get_filter",
    "language_consistency", "register_filter", "run_filters", "safe_decide", "score_batch",
]
