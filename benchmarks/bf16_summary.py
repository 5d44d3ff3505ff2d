"""Markdown table of benchmarks/bf16_accuracy.sh's results: every (depth, breadth) cell of the
'all' stratum in fp32, bf16 and bf16 with fp32 latents, side by side (mazes: with the race-q
column, the maze defaults).

    python benchmarks/bf16_summary.py docs/eval/bf16
"""

import json
import sys
from pathlib import Path

VARIANTS = ("fp32", "bf16", "bf16-fp32lat")


def main(root: Path) -> None:
    names = sorted({p.name.rsplit("-", 1)[0].removesuffix("-bf16") for p in root.iterdir()
                    if p.is_dir()})
    print("| eval | D | B | " + " | ".join(f"{v} exact (retry) / mean NFE" for v in VARIANTS)
          + " |")
    print("|---|---:|---:|" + "---:|" * len(VARIANTS))
    for name in names:
        results = {}
        for v in VARIANTS:
            path = root / f"{name}-{v}" / "result.json"
            if path.exists():
                results[v] = json.loads(path.read_text())
        if not results:
            continue
        first = next(iter(results.values()))
        for cell in (c for c in first["cells"] if c["stratum"] == "all"):
            row = []
            for v in VARIANTS:
                if v not in results:
                    row.append("—")
                    continue
                c = next(x for x in results[v]["cells"] if x["stratum"] == "all" and
                         x["depth"] == cell["depth"] and x["breadth"] == cell["breadth"])
                acc = c["acc_q"] if results[v]["halt"] == "act" else c["acc_residual"]
                retry = f" ({100 * c['acc_retry']:.1f})" if c["breadth"] > 1 else ""
                race_q = (f"; race q {100 * c['acc_race_q']:.1f} / {c['mean_nfe_race_q']:.1f}"
                          if c["breadth"] > 1 and "acc_race_q" in c else "")
                row.append(f"{100 * acc:.1f}{retry} / {c['mean_nfe']:.1f}{race_q}")
            print(f"| {name} | {cell['depth']} | {cell['breadth']} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/eval/bf16"))
