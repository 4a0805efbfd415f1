#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/tools/test_handbook.py - bench/replay/handbook.py, the handbook-shaped
data set of docs/DETECTION.md, writes what vigil reads and what its header
says: a small run is byte-identical for one seed and differs for another;
vigil-replay reads every row (no bad row) and counts the frauds the CSV
labels, under the three pattern names; every amount over 220 is a fraud;
the terminal is in both merchant_id and terminal_id; and the command line keeps the project's conventions (--help is the header, exit
0; a bad flag or value is one line ending "(see --help)", exit 2; a CSV
that cannot be written is one line, exit 1).

Usage: test_handbook.py BUILD_ROOT SOURCE_ROOT
"""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile

PATTERNS = {"amount_over_220", "compromised_terminal", "compromised_card"}


def fail(msg):
    sys.stderr.write(f"test_handbook: {msg}\n")
    sys.exit(1)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


def main():
    build, src = sys.argv[1], sys.argv[2]
    gen = [sys.executable, os.path.join(src, "bench/replay/handbook.py")]
    small = ["--customers", "300", "--terminals", "600", "--days", "45"]
    replay = os.path.join(build, "tools/replay/vigil-replay")

    a = run(gen + small + ["--seed", "3"])
    b = run(gen + small + ["--seed", "3"])
    c = run(gen + small + ["--seed", "4"])
    for r in (a, b, c):
        if r.returncode != 0:
            fail(f"handbook.py exit {r.returncode}: {r.stderr.strip()}")
    if a.stdout != b.stdout:
        fail("the same seed wrote two different data sets")
    if a.stdout == c.stdout:
        fail("seeds 3 and 4 wrote the same data set")

    rows = list(csv.DictReader(io.StringIO(a.stdout)))
    frauds = [r for r in rows if r["label"] == "1"]
    if len(rows) < 10000 or not frauds:
        fail(f"{len(rows)} rows, {len(frauds)} frauds: too small to check anything")
    for r in rows:
        if (r["label"] == "1") != (r["fraud_pattern"] != ""):
            fail(f"{r['txn_id']}: label {r['label']} with pattern {r['fraud_pattern']!r}")
        if r["fraud_pattern"] not in PATTERNS | {""}:
            fail(f"{r['txn_id']}: unknown pattern {r['fraud_pattern']!r}")
        if float(r["amount"]) > 220 and r["label"] != "1":
            fail(f"{r['txn_id']}: amount {r['amount']} over 220, not a fraud")
        if r["merchant_id"] != r["terminal_id"]:
            fail(f"{r['txn_id']}: merchant_id {r['merchant_id']} is not the terminal")
    seen = {r["fraud_pattern"] for r in frauds}
    if seen != PATTERNS:
        fail(f"patterns written: {sorted(seen)}")
    with tempfile.TemporaryDirectory(prefix="vigil-handbook-") as tmp:
        data = os.path.join(tmp, "hb.csv")
        with open(data, "w", encoding="ascii") as f:
            f.write(a.stdout)
        r = run([replay, "--csv", data, "--rules", os.path.join(src, "rules/default.rules"), "--json", "-q"])
        if r.returncode != 0:
            fail(f"vigil-replay exit {r.returncode}: {r.stderr.strip()}")
        s = json.loads(r.stdout)
        if s["rows"] != len(rows) or s["bad_rows"] != 0:
            fail(f"vigil-replay read {s['rows']} rows, {s['bad_rows']} bad, of {len(rows)}")
        m = s["metrics"]
        if m["frauds"] != len(frauds):
            fail(f"vigil-replay counted {m['frauds']} frauds, the CSV has {len(frauds)}")
        got = {p["name"]: p["rows"] for p in m["patterns"]}
        want = {p: sum(1 for x in frauds if x["fraud_pattern"] == p) for p in PATTERNS}
        if got != want:
            fail(f"vigil-replay's patterns {got}, the CSV's {want}")

        h = run(gen + ["--help"])
        if h.returncode != 0 or not h.stdout.startswith("bench/replay/handbook.py - ") \
                or "Exit status" not in h.stdout or h.stderr:
            fail(f"--help: exit {h.returncode}, {h.stdout[:60]!r}, {h.stderr[:60]!r}")
        for bad in (["--bogus"], ["--days", "0"], ["--days", "x"], ["--start", "2018-13-01"]):
            e = run(gen + bad)
            lines = e.stderr.splitlines()
            if e.returncode != 2 or e.stdout or len(lines) != 1 or \
                    not lines[0].startswith("handbook.py: ") or not lines[0].endswith("(see --help)"):
                fail(f"{bad}: exit {e.returncode}, stderr {e.stderr!r}")
        e = run(gen + small + ["-o", os.path.join(tmp, "no/such/dir.csv")])
        if e.returncode != 1 or len(e.stderr.splitlines()) != 1 or "No such file" not in e.stderr:
            fail(f"unwritable -o: exit {e.returncode}, stderr {e.stderr!r}")
    print(f"test_handbook: {len(rows)} rows, {len(frauds)} frauds, {sorted(want.items())}")


if __name__ == "__main__":
    main()
