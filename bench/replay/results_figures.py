#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/replay/results_figures.py - the figures of a vigil-replay --results
file, recomputed from its lines and the input CSV's labels: ROC AUC and AP
of the ranking (score, then the model's exact score), of model.score alone,
alert rate, precision and recall (review 40, decline 80), over the rows from
--measure-from and over the rows after the first model.

--gate RULE:POINTS recomputes them as if RULE had been gated with
`not present(model.score)`: its points are taken off the rows that had a
model score and where it fired. This is exact as long as no threshold reads
the rule (thresholds tune on features and labels, the model trains on the
archived vectors: neither sees a rule's hits). A check, not a substitute for
the replay of the changed rule file (bench/replay/model.sh).

usage: results_figures.py RESULTS CSV [--measure-from YYYY-MM-DD] [--measure-to YYYY-MM-DD]
                          [--gate RULE:POINTS ...]
"""
import argparse
import csv
import json
import sys

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from model_lab import metric_ap, metric_auc  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("csv")
    ap.add_argument("--measure-from")
    ap.add_argument("--measure-to", help="rows before this day only")
    ap.add_argument("--gate", nargs="*", default=[])
    a = ap.parse_args()
    lab, tm = {}, {}
    with open(a.csv, newline="") as f:
        for r in csv.DictReader(f):
            lab[r["txn_id"]] = 1 if r.get("label") in ("1", "true", "fraud") else 0
            tm[r["txn_id"]] = r["event_time"]
    ids, S, M, H = [], [], [], []
    for line in open(a.results):
        try:
            r = json.loads(line)
        except ValueError:
            break  # a run still writing
        ids.append(r["txn_id"])
        S.append(r["score"])
        M.append(r.get("model", {}).get("score", np.nan))
        H.append(r["hits"])
    S, M = np.array(S, float), np.array(M, float)
    y = np.array([lab[k] for k in ids], float)
    t = np.array([tm[k] for k in ids])
    has = ~np.isnan(M)
    for g in a.gate:
        name, pts = g.split(":")
        hit = np.array([name in h for h in H])
        S = S - np.where(hit & has, float(pts), 0.0)
    first = t[has][0] if has.any() else None
    Mz = np.where(has, M, -1.0)
    rank = S + np.clip(Mz, 0, 1) * 0.999
    m0 = np.ones(len(S), bool) if not a.measure_from else t >= a.measure_from
    if a.measure_to:
        m0 &= t < a.measure_to
    sets = [("measured", m0)]
    if first is not None:
        sets.append(("after first model", sets[0][1] & (t >= first)))
    print("%s: %d rows (last %s), first model %s%s" % (
        a.results, len(S), t[-1][:10] if len(t) else "-", first[:10] if first else None,
        "; gated: " + " ".join(a.gate) if a.gate else ""))
    for name, m in sets:
        yy = y[m]
        if yy.sum() == 0 or yy.sum() == len(yy):
            print("  %-18s rows %7d frauds %5d: no ranking to measure" % (name, m.sum(), yy.sum()))
            continue
        alert = S[m] >= 40
        tp = (alert & (yy == 1)).sum()
        print("  %-18s rows %7d frauds %5d  rank AUC %.4f AP %.4f  model AUC %.4f AP %.4f  "
              "alert %.2f%% precision %.1f%% recall %.1f%%" % (
                  name, m.sum(), yy.sum(), metric_auc(rank[m], yy), metric_ap(rank[m], yy),
                  metric_auc(Mz[m], yy), metric_ap(Mz[m], yy), 100 * alert.mean(),
                  100 * tp / max(alert.sum(), 1), 100 * tp / max(yy.sum(), 1)))


if __name__ == "__main__":
    main()
