"""Language mixing: the share of target-language words in the chain of thought (R1's definition
of its language-consistency reward, arXiv 2501.12948 §2.3.3), and separately in the answer.

Target language: the trace's `language`, else the prompt's detected language, else the
reasoning's own. Words are found script-aware (CJK per character; Latin, Cyrillic, … per word)
after masking LaTeX, code, numbers and URLs. Each stretch of text gets a language:

- a script that belongs to few languages decides directly (Han → zh, or ja where kana appears;
  Hangul → ko; Thai → th; Bengali → bn; Telugu → te; …);
- Latin (and Cyrillic) text is told apart with fastText lid.176 per sentence, but only where it
  is needed: a paragraph whose share of the target language's function words is high enough is
  the target language without asking the model (that shortcut is what makes the stack fast);
- short Latin runs inside non-Latin text (`AB`, `cm`, a variable name) are neutral.

Reasons: `lang_mix_below_min` (reasoning share), `foreign_script_words_above_max` (words in another
script than the target's: "per生长周期"), `answer_lang_mix_below_min`,
`same_script_foreign_words_above_max` (off by default).

>>> round(language_consistency("We add the two numbers and get the final answer.", "en"), 2)
1.0
>>> language_consistency("我们把两个数相加，然后 we get the answer.", "zh") < 1
True
"""

from __future__ import annotations

import functools
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from filters import langid
from filters import text as _text
from filters.base import FilterInput, FilterSpec, Thresholds, register_filter
from filters.split import THINK_FORMATS, split_completion
from filters.text import (
    HAN,
    KANA,
    KANA_RE,
    LATIN_WORD_RE,
    PROSE_WORD_RE,
    SCRIPT_RUN_RE,
    SCRIPT_TOKEN_RE,
    TOKEN_RE,
    WORD2_RE,
    has_non_latin_letter,
    has_non_latin_math_letter,
    lowered,
    mask_non_prose,
    paragraphs,
    safe_text,
    sentences,
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass
class LanguageMixingThresholds(Thresholds):
    """Language-mixing thresholds; `None` switches a check off."""

    # R1 gives no number; 0.95 keeps a CoT with a few foreign-looking sentences and drops one
    # that drifts. The GRPO reward uses the raw share.
    min_reasoning_share: float | None = field(default=0.95, metadata={"help": "share of target-language words in the reasoning (R1 language consistency)"})
    min_answer_share: float | None = field(default=0.9, metadata={"help": "same for the answer/summary"})
    # Any word in a script the target language does not use (Chinese characters in an English
    # CoT) is mixing: the three real cases in ../shared/data are 4-character Chinese insertions.
    max_foreign_script_words: int | None = field(default=0, metadata={"help": "words in another script than the target's (reasoning + answer)"})
    # R1 filters mixed languages in the chain of thought. An SFT row's answer may be a translation
    # or name foreign titles (125 real SFT rows were rejected so), so in the non_reasoning bucket
    # only the reasoning share applies (rows with an added CoT).
    by_bucket: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "non_reasoning": {"max_foreign_script_words": None, "min_answer_share": None}},
        metadata={"help": "per-bucket profile (non_reasoning: only the reasoning's language share)"})
    max_same_script_foreign_words: int | None = field(default=None, metadata={"help": "words of another same-script language (e.g. Spanish in English); off by default, the share covers it"})


LATIN_LANGS = _words(
    "en de es fr it pt nl sw id ms vi tr pl cs sk sl hr ro hu fi et lv lt da sv no is ga cy eu ca gl af "
    "tl so ha yo ig zu xh la eo sq az uz tk mt lb oc br co fy gd"
)
SCRIPT_LANGS = {
    "cjk": ("zh", "ja"), "hangul": ("ko",), "cyrillic": ("ru", "uk", "bg", "sr", "mk", "be", "kk", "ky", "tg", "mn"),
    "arabic": ("ar", "fa", "ur", "ps", "ug", "ckb"), "devanagari": ("hi", "mr", "ne", "sa"), "bengali": ("bn", "as"),
    "telugu": ("te",), "tamil": ("ta",), "thai": ("th",), "hebrew": ("he", "yi"), "greek": ("el",),
}
_LANG_SCRIPT = {lang: script for script, langs in SCRIPT_LANGS.items() for lang in langs}

# Function words per Latin-script language, chosen to be rare in the others (no "a", "die",
# "was", "also", "in"), so a paragraph full of them is that language without asking fastText.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "the and of to is that this it we for with be are not but if then have has can let would should "
        "which what so there they at by from or as all one when how our its each other these those since "
        "because maybe wait need think now first next answer number get find check just only more than into "
        "been were does do did any some same both right here where why who yes okay hmm it's let's i'm i'll "
        "don't that's there's we're we've isn't doesn't you your my me he she his her them their could "
        "about after before over also up out like well see"
    ),
    "de": _words("der die das und ist nicht ein eine zu den mit sich auf für von dem des wir ich es auch "
                    "wenn dann aber oder noch nur wie bei aus nach sind wird kann muss"),
    "es": _words("el la los las y es que de en un una por con para del se no lo al como más pero sus "
                    "entonces si cuando hay ser son está tiene"),
    "fr": _words("le la les et est que de des un une du en pour pas par sur il elle nous on ce qui dans "
                    "avec plus mais ou donc si alors sont être avoir"),
    "it": _words("il la le e è che di un una non con del della gli sono si come ma se anche"),
    "sw": _words("na ya wa kwa ni za la katika kila je kama lakini pia yake zake wake ana kuna alikuwa "
                 "hiyo huyo hii huu kwamba baada kabla ngapi jumla zaidi kuwa huwa ikiwa moja mbili nusu siku"),
    "pt": _words("o a os as e é que de um uma para não com do da dos das se por mas como são está"),
}

_ANY_STOPWORD = frozenset().union(*STOPWORDS.values())


@dataclass(slots=True)
class _Part:
    """One text (reasoning or answer) being labelled."""

    name: str
    text: str
    target: str
    target_words: int = 0
    foreign: Counter[str] = field(default_factory=Counter)
    foreign_script_words: int = 0
    same_script_words: int = 0
    spans: list[list[Any]] = field(default_factory=list)  # [lang, start, end, words, cross_script]

    def add_foreign(self, lang: str, start: int, end: int, words: int, cross: bool) -> None:
        self.foreign[lang] += words
        if cross:
            self.foreign_script_words += words
        else:
            self.same_script_words += words
        last = self.spans[-1] if self.spans else None
        # Merge with the previous span when it is the same language and only prose-free text
        # (spaces, punctuation, masked math) lies between.
        if last and last[0] == lang and not LATIN_WORD_RE.search(self.text, last[2], start) and start - last[2] < 200:
            last[2], last[3] = end, last[3] + words
        else:
            self.spans.append([lang, start, end, words, cross])


# Inside a CJK run, the characters that are not CJK (separators): words = length - these.
_CJK_GAP_RE = re.compile(f"[^{HAN}{KANA}]")


def _script_of(group: str) -> str:
    return "cjk" if group in ("han", "kana") else group


def _regions(masked: str) -> list[tuple[str, int, int, int, bool]]:
    """(script, start, end, words, has_kana) runs of one script; Latin-only text is one run.

    Words as TOKEN_RE counts them: one per CJK character (a kana run counts its characters),
    one per token in other scripts."""
    if not has_non_latin_letter(masked):
        return [("latin", 0, len(masked), -1, False)]
    out: list[tuple[str, int, int, int, bool]] = []
    cur: list[Any] | None = None
    for m in SCRIPT_RUN_RE.finditer(masked):
        script = m.lastgroup or "other"
        a, b = m.span()
        if script == "other":
            words, kana = 1, False
        elif script == "cjk":
            words, kana = b - a - len(_CJK_GAP_RE.findall(masked, a, b)), KANA_RE.search(masked, a, b) is not None
        else:
            words, kana = len(SCRIPT_TOKEN_RE[script].findall(masked, a, b)), False
        if cur is not None and cur[0] == script:
            cur[2] = b
            cur[3] += words
            cur[4] = cur[4] or kana
        else:
            if cur is not None:
                out.append(tuple(cur))  # type: ignore[arg-type]
            cur = [script, a, b, words, kana]
    if cur is not None:
        out.append(tuple(cur))  # type: ignore[arg-type]
    return out


@dataclass
class _Job:
    """A segment waiting for the language-ID model: (part, start, end, words, cross_script)."""

    part: _Part
    start: int
    end: int
    words: int
    cross: bool
    fallback: str | None  # label when the model is unsure; None → count as target
    provisional: bool = False  # words already counted as target: move them if labelled foreign
    sample: str = ""  # the (masked) text the model reads; default: the span of the part's text


def _label_part(part: _Part, target: str, params: _Params, jobs: list[_Job]) -> None:
    target_script = _LANG_SCRIPT.get(target, "latin")
    stop = STOPWORDS.get(target)
    if target_script == "latin" and not has_non_latin_math_letter(part.text):
        _label_latin_fast(part, stop, params, jobs)
        return
    masked = mask_non_prose(part.text)
    has_kana_anywhere = None
    lowered: str | None = None
    regions = _regions(masked)
    for script, a, b, words, has_kana in regions:
        cross = script != target_script
        if script == "latin":
            if not cross:
                if lowered is None:
                    lowered = masked.lower()
                _label_latin(part, masked, lowered, a, b, stop, params, jobs)
                continue
            toks = WORD2_RE.findall(masked, a, b)
            # Latin inside Chinese/Russian/… text is prose (mixing) only when it has function
            # words; "Visual Studio", "Rio de Janeiro", "AB", "cm" are names, terms, symbols.
            if len(toks) >= params.min_cross_script_words and any(map(_ANY_STOPWORD.__contains__, map(str.lower, toks))):
                jobs.append(_Job(part, a, b, len(toks), True, "und"))
            continue
        if not cross:
            if script == "cjk" and target in ("zh", "ja"):
                # Chinese vs Japanese: a Japanese target accepts kanji; a Chinese one rejects kana.
                if has_kana and target == "zh":
                    part.add_foreign("ja", a, b, words, True)
                    continue
            elif script in ("cyrillic", "arabic", "devanagari") and words >= params.min_segment_words:
                jobs.append(_Job(part, a, b, words, False, None))
                continue
            part.target_words += words
            continue
        if script == "greek":
            continue  # α, θ + φ = π: in a non-Greek text Greek letters are math symbols
        if script == "other":
            part.add_foreign("und", a, b, words, True)
            continue
        if script == "cjk":
            if has_kana_anywhere is None:
                has_kana_anywhere = any(r[4] for r in regions)
            lang = "ja" if has_kana or has_kana_anywhere else "zh"
        else:
            lang = SCRIPT_LANGS.get(script, ("und",))[0]
        part.add_foreign(lang, a, b, words, True)


def _prose_counts_py(low: str, spans: Sequence[tuple[int, int]], stop: frozenset[str] | None) -> list[tuple[int, int]]:
    """Per span: (PROSE_WORD_RE words, how many are function words of `stop`); what
    `text.KERNEL.prose_counts` computes in C."""
    out = []
    for a, b in spans:
        toks = PROSE_WORD_RE.findall(low, a, b)
        out.append((len(toks), sum(map(stop.__contains__, toks)) if stop is not None else 0))
    return out


def _stop_table(stop: frozenset[str] | None) -> tuple[bytes, int]:
    """The kernel's form of a stopword set: its word hashes, and its longest word."""
    got = _STOP_TABLES.get(stop)
    if got is None:
        words = stop or frozenset()
        got = _STOP_TABLES[stop] = (b"".join(_text.KERNEL.word_hash(w).to_bytes(8, sys.byteorder) for w in words),
                                    max(map(len, words), default=0))
    return got


_STOP_TABLES: dict[frozenset[str] | None, tuple[bytes, int]] = {}


def prose_counts(low: str, spans: Sequence[tuple[int, int]], stop: frozenset[str] | None) -> list[tuple[int, int]]:
    if _text.KERNEL is None:
        return _prose_counts_py(low, spans, stop)
    return _text.KERNEL.prose_counts(low, spans, *_stop_table(stop))


def _label_latin_fast(part: _Part, stop: frozenset[str] | None, params: _Params, jobs: list[_Job]) -> None:
    """The common case — Latin-script target, no letters of other scripts except Greek and
    math symbols — on the raw text: no masking pass. Words are Latin runs of 2+ letters not
    preceded by a backslash or letter (so `\\frac` is no word, numbers never are); only a
    paragraph whose function words do not vouch for it is masked and sent to the model."""
    text = part.text
    spans = paragraphs(text)
    for (pa, pb), (n, hits) in zip(spans, prose_counts(lowered(text), spans, stop)):
        part.target_words += n
        if n < params.min_segment_words:
            continue
        if stop is not None and hits >= params.stopword_share * n:
            continue
        masked = mask_non_prose(text[pa:pb])
        for sa, sb in sentences(masked, 0, len(masked)):
            m = len(PROSE_WORD_RE.findall(masked, sa, sb))
            if m >= params.min_segment_words:
                jobs.append(_Job(part, pa + sa, pa + sb, m, False, None, provisional=True, sample=masked[sa:sb]))


def _label_latin(part: _Part, masked: str, lowered: str, a: int, b: int, stop: frozenset[str] | None,
                 params: _Params, jobs: list[_Job]) -> None:
    """Latin text under a Latin-script target: every word counts as the target language unless
    the language-ID model, asked about a paragraph whose function words do not vouch for it,
    says otherwise (then `_apply_labels` moves those words to the foreign side)."""
    spans = paragraphs(masked) if (a, b) == (0, len(masked)) else [(x + a, y + a) for x, y in paragraphs(masked[a:b])]
    for pa, pb in spans:
        toks = WORD2_RE.findall(lowered, pa, pb)
        n = len(toks)
        part.target_words += n
        if n < params.min_segment_words:
            continue
        if stop is not None and sum(map(stop.__contains__, toks)) >= params.stopword_share * n:
            continue
        for sa, sb in sentences(masked, pa, pb):
            m = len(WORD2_RE.findall(masked, sa, sb))
            if m >= params.min_segment_words:
                jobs.append(_Job(part, sa, sb, m, False, None, provisional=True))


@dataclass(frozen=True)
class _Params:
    backend: langid.Backend = "fasttext"
    min_segment_words: int = 5
    min_cross_script_words: int = 3
    min_confidence: float = 0.5
    stopword_share: float = 0.15
    max_scan_chars: int = 1_000_000
    max_spans: int = 20


def stopword_vote(words: Sequence[str], min_hits: int = 2, min_share: float = 0.1) -> str | None:
    """The language whose function words clearly dominate lower-cased `words`, or None."""
    return _vote(len(words), [sum(map(sw.__contains__, words)) for sw in STOPWORDS.values()], min_hits, min_share)


def _vote(n_words: int, hits: Sequence[int], min_hits: int, min_share: float) -> str | None:
    ranked = sorted(zip(hits, STOPWORDS), reverse=True)
    (best, lang), (second, _) = ranked[0], ranked[1]
    return lang if best >= min_hits and best >= min_share * n_words and best >= 2 * second else None


def _text_vote(text: str, start: int, end: int, min_hits: int = 2, min_share: float = 0.1) -> tuple[int, str | None]:
    """(WORD2_RE words in text[start:end], `stopword_vote` of them lower-cased)."""
    if _text.KERNEL is None:
        words = [w.lower() for w in WORD2_RE.findall(text, start, end)]
        return len(words), stopword_vote(words, min_hits, min_share)
    n, hits = _text.KERNEL.stopword_hits(text, start, end, _vote_tables())
    return n, _vote(n, hits, min_hits, min_share)


@functools.cache
def _vote_tables() -> tuple[bytes, ...]:
    """Every language's stopword hashes, in STOPWORDS order (what `_vote` ranks)."""
    return tuple(_stop_table(sw)[0] for sw in STOPWORDS.values())


def detect_language(text: Any, backend: langid.Backend = "fasttext", min_confidence: float = 0.4) -> str | None:
    """The language of a prompt or any short text (None when it has no letters).

    Scripts that settle the question do (kana → ja, Han → zh, Hangul → ko); otherwise the
    language-ID model reads the whole text with LaTeX, code and numbers masked.
    """
    t, _ = safe_text(text)
    masked = mask_non_prose(t[:20_000])
    if not masked.strip():
        return None
    non_latin = has_non_latin_letter(masked)
    if non_latin:
        groups = Counter(_script_of(m.lastgroup or "other") for m in TOKEN_RE.finditer(masked))
        kana = any(m.lastgroup == "kana" for m in TOKEN_RE.finditer(masked))
        script, n = groups.most_common(1)[0]
        if script == "cjk" and n >= 0.3 * sum(groups.values()):
            return "ja" if kana else "zh"
        if script == "hangul":
            return "ko"
    n_latin, vote = _text_vote(masked, 0, len(masked))
    if n_latin and not non_latin and vote:
        # Function words settle short Latin texts the model reads badly ("What comes next:
        # OTTFFSSE" is Italian to lid.176).
        return vote
    # Too few words (a LaTeX-only problem statement) or an unsure model: no answer, and the
    # caller falls back to the reasoning's own language.
    if n_latin < 3 and not non_latin:
        return None
    lang, prob = langid.predict_one(masked, backend)
    return lang if prob >= min_confidence else None


def _score_batch(inputs: Sequence[FilterInput], p: _Params) -> list[dict[str, Any]]:
    jobs: list[_Job] = []
    states = []
    prompt_cache: dict[str, str | None] = {}
    for inp in inputs:
        reasoning, f1 = safe_text(inp.reasoning)
        answer, f2 = safe_text(inp.answer)
        if not reasoning and not answer:
            completion, f3 = safe_text(inp.completion)
            f1 += f3
            sp = split_completion(completion, inp.think_format if inp.think_format in THINK_FORMATS else "auto")
            reasoning, answer = sp.reasoning, sp.answer
        truncated = len(reasoning) > p.max_scan_chars or len(answer) > p.max_scan_chars
        reasoning, answer = reasoning[: p.max_scan_chars], answer[: p.max_scan_chars]
        target, source = langid.normalize_lang(inp.language), "trace"
        if target is None:
            prompt, _ = safe_text(inp.prompt)
            if prompt.strip():
                if prompt not in prompt_cache:
                    prompt_cache[prompt] = detect_language(prompt, p.backend)
                target, source = prompt_cache[prompt], "prompt"
        if target is None:
            target, source = detect_language(reasoning[:4000] or answer[:4000], p.backend), "reasoning"
        if target is None:
            target, source = "und", "none"
        parts = (_Part("reasoning", reasoning, target), _Part("answer", answer, target))
        for part in parts:
            _label_part(part, target, p, jobs)
        states.append((inp, target, source, parts, sorted(set(f1 + f2)), truncated))

    # One model call for every segment of the batch.
    labels = langid.predict([j.sample or j.part.text[j.start:j.end] for j in jobs], p.min_confidence, p.backend)
    for job, lab in zip(jobs, labels):
        lang = lab if lab is not None else job.fallback
        if lab is None and job.provisional:
            # The model is unsure (lid.176 is weak on Swahili): function words may still tell.
            lang = _text_vote(job.part.text, job.start, job.end, 3, 0.2)[1]
        if lang is None or lang == job.part.target:
            if not job.provisional:
                job.part.target_words += job.words
        else:
            if job.provisional:
                job.part.target_words -= job.words
            job.part.add_foreign(lang, job.start, job.end, job.words, job.cross)
    return [_finish(*st, p) for st in states]


def _finish(inp: FilterInput, target: str, source: str, parts: tuple[_Part, _Part], fixes: list[str],
            truncated: bool, p: _Params) -> dict[str, Any]:
    s: dict[str, Any] = {
        "domain": inp.domain if isinstance(inp.domain, str) else None,
        "language": target,
        "bucket": inp.bucket if isinstance(inp.bucket, str) else None,
        "target_language": target,
        "target_source": source,
        "sanitized": fixes,
        "scan_truncated": truncated,
        "backend": p.backend,
        "spans": {},
    }
    foreign_total: Counter[str] = Counter()
    spans_out: list[dict[str, Any]] = []
    for part in parts:
        total = part.target_words + sum(part.foreign.values())
        s[f"{part.name}_words"] = total
        s[f"{part.name}_target_words"] = part.target_words
        s[f"{part.name}_share"] = round(part.target_words / total, 4) if total else None
        s[f"{part.name}_foreign_script_words"] = part.foreign_script_words
        s[f"{part.name}_same_script_foreign_words"] = part.same_script_words
        foreign_total.update(part.foreign)
        for lang, a, b, words, cross in part.spans:
            spans_out.append({"part": part.name, "lang": lang, "start": a, "end": b, "words": words,
                              "cross_script": cross, "text": part.text[a:b][:80]})
    s["foreign_script_words"] = parts[0].foreign_script_words + parts[1].foreign_script_words
    s["same_script_foreign_words"] = parts[0].same_script_words + parts[1].same_script_words
    s["other_languages"] = dict(foreign_total.most_common())
    s["foreign_spans"] = spans_out[: p.max_spans]
    s["n_foreign_spans"] = len(spans_out)
    if spans_out:
        first = max(spans_out, key=lambda x: x["words"])
        s["spans"]["foreign"] = [first["part"], first["start"], first["end"]]
    return s


def score(inputs: Sequence[FilterInput], backend: langid.Backend = "fasttext", min_segment_words: int = 5,
          min_cross_script_words: int = 3, min_confidence: float = 0.5, stopword_share: float = 0.15,
          max_scan_chars: int = 1_000_000, max_spans: int = 20) -> list[dict[str, Any]]:
    """Score a batch. Scoring knobs (not thresholds: changing them needs a re-score):

    backend: `fasttext` (lid.176) or `langdetect`; min_segment_words: a Latin sentence needs this
    many words before the model judges it (shorter ones count as the target language);
    min_cross_script_words: a Latin run inside non-Latin text with fewer words is neutral;
    min_confidence: model probability below which a segment counts as the target language;
    stopword_share: function-word share above which a paragraph is the target language without
    the model; max_scan_chars: text beyond this is not read (`scan_truncated`).
    """
    p = _Params(backend, min_segment_words, min_cross_script_words, min_confidence, stopword_share, max_scan_chars, max_spans)
    return _score_batch(inputs, p)


def decide(s: Mapping[str, Any], t: LanguageMixingThresholds) -> tuple[bool, str | None]:
    if s.get("target_language") == "und":
        return True, None  # no language to be consistent with (no letters in prompt or text)
    share = s.get("reasoning_share")
    if t.min_reasoning_share is not None and share is not None and share < t.min_reasoning_share:
        return False, "lang_mix_below_min"
    if t.max_foreign_script_words is not None and s.get("foreign_script_words", 0) > t.max_foreign_script_words:
        return False, "foreign_script_words_above_max"
    share = s.get("answer_share")
    if t.min_answer_share is not None and share is not None and share < t.min_answer_share:
        return False, "answer_lang_mix_below_min"
    if t.max_same_script_foreign_words is not None and s.get("same_script_foreign_words", 0) > t.max_same_script_foreign_words:
        return False, "same_script_foreign_words_above_max"
    return True, None


def language_consistency(text: str, target_language: str, backend: langid.Backend = "fasttext") -> float:
    """R1's language-consistency reward: share of `target_language` words in `text` (0.0–1.0).

    A text without any words scores 0.0 (an empty chain of thought earns no reward).
    """
    s = score([FilterInput(reasoning=text, answer="", language=target_language)], backend=backend)[0]
    return float(s["reasoning_share"] or 0.0)


def language_consistency_batch(texts: Sequence[str], target_languages: Sequence[str],
                               backend: langid.Backend = "fasttext") -> list[float]:
    """`language_consistency` for many texts with one model call (the GRPO reward shape)."""
    scores = score([FilterInput(reasoning=t, answer="", language=lang) for t, lang in zip(texts, target_languages)], backend=backend)
    return [float(s["reasoning_share"] or 0.0) for s in scores]


SPEC = register_filter(FilterSpec(
    "language_mixing", score, decide, LanguageMixingThresholds,
    span_for_reason={k: "foreign" for k in ("lang_mix_below_min", "foreign_script_words_above_max",
                                             "answer_lang_mix_below_min", "same_script_foreign_words_above_max")},
))
