"""Agreement of the math verifier with Sky-T1's own correctness labels, over every labelled sample in
../shared/data/traces/sky_t1 (correct vs not). Prints the agreement and, with --out, writes each
pair's file, idx, label, verdict and reason so the disagreements can be read.

    python bench/sky_t1_agreement.py [--out disagreements.json]

Sky-T1's labels come from its own grader, which is stricter in places (it graded multi-part
answers on their first item, and equations rearranged or written as `x(t) = …` as wrong), so
agreement is not accuracy: read the disagreements.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dataengine.verify.math import MathVerifier

SKY = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "traces" / "sky_t1"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    pairs, labels, where = [], [], []
    for f in sorted(SKY.glob("*.jsonl")):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            codes = r["code"] if isinstance(r["code"], list) else [r["code"]]
            scores = r["score"] if isinstance(r["score"], list) else [r["score"]]
            for c, s in zip(codes, scores):
                if s is None:
                    continue
                pairs.append((r["gt"], c))
                labels.append(bool(s))
                where.append((f.name, r["idx"]))
    with MathVerifier(workers=args.workers) as v:
        res = v.verify_batch(pairs)
    agree = sum((x.verdict == "correct") == lab for x, lab in zip(res, labels))
    print(f"agreement {agree}/{len(pairs)} = {agree / len(pairs):.4f}")
    if args.out:
        rows = [[w[0], w[1], lab, x.verdict, x.details.get("reason")] for w, lab, x in zip(where, labels, res)
                if (x.verdict == "correct") != lab]
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
