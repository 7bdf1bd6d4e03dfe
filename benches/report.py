#!/usr/bin/env python3
"""Print each bench's ratio to the ceiling measured in the same run.

Run after `cargo bench -p winmdm-benches`; reads target/criterion/<group>/<bench>/new/estimates.json.
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
for group in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "report"):
    results = {}
    for est in group.glob("**/new/estimates.json"):
        name = str(est.parent.parent.relative_to(group))
        results[name] = json.loads(est.read_text())["mean"]["point_estimate"]
    ceilings = {k: v for k, v in results.items() if k.startswith("ceiling")}
    if not ceilings:
        continue
    if len(ceilings) == 1:
        ceiling_name, ceiling = next(iter(ceilings.items()))
    else:
        # Several ceilings: the operation needs all of them, so the bound is their sum.
        ceiling_name, ceiling = " + ".join(sorted(ceilings)), sum(ceilings.values())
    print(f"{group.name}: ceiling {ceiling_name} = {ceiling / 1000:.2f} us")
    for name, mean in sorted(results.items()):
        print(f"  {name:45s} {mean / 1000:9.2f} us  {mean / ceiling:5.2f}x")
