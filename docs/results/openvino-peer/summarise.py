"""Mean and spread per row of ablation.sh's output: ``python summarise.py ablation.txt [...]``.

Each input line is ``ROW seed=N SPLIT  mAP50 X  mAP50-95 Y ...`` (what ``ablation.sh`` prints);
prints one markdown row per ablation row: the seeds, val and test mAP50 / mAP50-95 means, and the
test mAP50-95 range over seeds.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from statistics import mean

LINE = re.compile(r"^(\S+) seed=(\d+) (val|test)\s+mAP50 ([0-9.]+)\s+mAP50-95 ([0-9.]+)")


def main(paths: list[str]) -> None:
    rows: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    seeds: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                match = LINE.match(line.strip())
                if match:
                    row, seed, split, m50, m5095 = match.groups()
                    rows[row][split].append((float(m50), float(m5095)))
                    seeds[row].add(seed)
    print("| row | seeds | val mAP50 / mAP50-95 (mean) | test mAP50 / mAP50-95 (mean) | test mAP50-95 over seeds |")
    print("| --- | --- | --- | --- | --- |")
    for row, splits in rows.items():
        val, test = splits["val"], splits["test"]
        spread = sorted(t[1] for t in test)
        print(
            f"| {row} | {len(seeds[row])} | {mean(v[0] for v in val):.4f} / {mean(v[1] for v in val):.4f} | "
            f"{mean(t[0] for t in test):.4f} / {mean(t[1] for t in test):.4f} | "
            f"{spread[0]:.4f} to {spread[-1]:.4f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
