"""Categories of non-reasoning SFT rows, by source mapping first and a keyword rule otherwise.

The R1 report's non-reasoning data is writing, factual QA, self-cognition and translation; chat
(greetings and small talk) is kept apart because trivial queries get no chain of thought.

Rules run in order and the first match wins, so the order below is the precedence (a request to
"translate this poem" is translation, not writing). Keywords cover English and Chinese.

>>> categorize("Who are you?")
'self_cognition'
>>> categorize("把下面这句话翻译成英文：我爱你")
'translation'
>>> categorize("hello"), is_trivial("hello"), is_trivial("Explain photosynthesis")
('chat', True, False)
"""

from __future__ import annotations

import re

from dataengine.prompting import is_trivial_query as is_trivial

CATEGORIES = ("self_cognition", "translation", "code", "math", "writing", "factual_qa", "chat", "general")

_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("self_cognition", re.compile(
        r"\b(who|what) (are|r) (you|u)\b|\byour name\b|\bintroduce yourself\b|\babout yourself\b|"
        r"\bwho (created|made|built|trained|developed) you\b|\bare you (chatgpt|gpt|an ai|a robot|human|trained|created|based)\b|"
        r"\bhave a name\b|你是谁|你叫什么|你的名字|介绍一下你自己|介绍下你自己|谁(开发|创造|训练|制作)了你|"
        r"你是(chatgpt|gpt|机器人|人工智能|什么)|你(的)?(身份|名字|开发|创作者|诞生|来自|是一个|是由|能做什么|具备|技能|功能|"
        r"特点|使命|职责|定位|优势|特长|目标|能力|工作)|(创造|开发|制作)你|作为chatgpt|openai为什么要制作你",
        re.IGNORECASE)),
    ("translation", re.compile(
        r"\btranslat(e|ion|ing)\b|\bin (english|french|german|spanish|chinese|japanese|italian|russian)\b|"
        r"翻译|译成|译为|英译中|中译英", re.IGNORECASE)),
    ("code", re.compile(
        r"\b(python|javascript|java|c\+\+|sql|html|css|function|algorithm|code|program|script|regex|api)\b|"
        r"```|代码|编程|函数|算法|程序", re.IGNORECASE)),
    ("math", re.compile(
        r"\b(calculate|compute|solve|equation|integral|derivative|probability|sum of|how many|percent)\b|"
        r"\d+\s*[-+*/x×÷^]\s*\d+|计算|求解|方程|等于多少|概率|多少个", re.IGNORECASE)),
    ("writing", re.compile(
        r"\b(write|compose|draft|story|poem|essay|letter|slogan|tweet|headline|title|rewrite|paraphrase|"
        r"summari[sz]e|edit|reword|rephrase|describe|generate a|create a|brainstorm|invent)\b|"
        r"写|作文|诗|故事|文章|改写|润色|总结|概括|摘要|创作|标题|口号", re.IGNORECASE)),
    ("factual_qa", re.compile(
        r"^\s*(what|who|when|where|which|why|how|is|are|does|do|can|name|list|explain|define|give)\b|"
        r"[?？]\s*$|什么|为什么|怎么|如何|哪|是否|吗[?？]?\s*$|解释|介绍", re.IGNORECASE)),
]


_GREETING_OPENER = re.compile(r"^\s*(hi|hello|hey|你好|您好|嗨)\b", re.IGNORECASE)


def categorize(prompt: str) -> str:
    """The category of one prompt (see `CATEGORIES`); `general` when no rule matches."""
    if is_trivial(prompt):
        return "chat"
    if _GREETING_OPENER.match(prompt) and len(prompt) <= 20 and not _RULES[0][1].search(prompt):
        return "chat"  # "你好，很高兴认识你": small talk, not a task
    head = prompt[:2000]  # the ask is at the start; long pasted inputs only add noise
    for name, rx in _RULES:
        if rx.search(head):
            return name
    return "general"
