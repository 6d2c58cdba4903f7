"""Verification: rule verifiers (math, multiple choice, sandboxed code), a generative judge, a
policy that combines them, the `verify` stage and rejection sampling (`select`).

Other stages reuse the pieces directly, e.g. the GRPO accuracy reward:

>>> from dataengine.verify.math import grade_math
>>> grade_math("\\\\frac{1}{2}", "so the answer is \\\\boxed{0.5}").verdict
'correct'
"""

from dataengine.verify.result import VERDICTS, VerifyResult

__all__ = ["VERDICTS", "VerifyResult"]
