#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/replay/results_figures.py - the figures of a vigil-replay --results
file, recomputed from its lines and the input CSV's labels: ROC AUC, AP and
card precision top 100 per day of the score alone (the 0-100 score), and
beside them of model.score alone, alert rate, precision and recall (the
decisions of the results), over the rows from --measure-from and over the
rows after the first model.

--gate RULE:POINTS recomputes them as if RULE had been gated with
`not present(model.score)`: its points are taken off the rows that had a
model score and where it fired. This is exact as long as no threshold reads
the rule (thresholds tune on features and labels, the model trains on the
archived vectors: neither sees a rule's hits). A check, not a substitute for
the replay of the changed rule file (bench/replay/model.sh).

--calibration also prints, for the rows after the first model, how well the
score reads as a probability: per score band (score / 100 taken as the
predicted fraud probability) the rows, their frauds, the mean predicted and
the observed fraud rate; the expected calibration error (ECE: the row-weighted
mean of |predicted - observed| over the bands, and the same over the bands
from 0.5% up, where the alerts are) and the Brier score.

Needs Debian's python3-numpy and python3-xgboost (the metrics are
model_lab.py's, which trains with XGBoost); run with /usr/bin/python3.

usage: results_figures.py RESULTS CSV [--measure-from YYYY-MM-DD] [--measure-to YYYY-MM-DD]
                          [--gate RULE:POINTS ...] [--calibration]
"""
import argparse
import csv
import json
import sys

try:
    import numpy as np

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from model_lab import metric_ap, metric_auc
except ImportError as e:
    sys.exit(f"results_figures.py: {e}: needs python3-numpy and python3-xgboost "
             "(apt-get install python3-numpy python3-xgboost; /usr/bin/python3)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("csv")
    ap.add_argument("--measure-from")
    ap.add_argument("--measure-to", help="rows before this day only")
    ap.add_argument("--gate", nargs="*", default=[])
    ap.add_argument("--calibration", action="store_true")
    a = ap.parse_args()
    lab, tm, card = {}, {}, {}
    with open(a.csv, newline="") as f:
        for r in csv.DictReader(f):
            lab[r["txn_id"]] = 1 if r.get("label") in ("1", "true", "fraud") else 0
            tm[r["txn_id"]] = r["event_time"]
            card[r["txn_id"]] = r.get("card_id", "")
    ids, S, M, H, D = [], [], [], [], []
    for line in open(a.results):
        try:
            r = json.loads(line)
        except ValueError:
            break  # a run still writing
        ids.append(r["txn_id"])
        S.append(r["score"])
        M.append(r.get("model", {}).get("score", np.nan))
        H.append(r["hits"])
        D.append(r.get("decision", ""))
    S, M = np.array(S, float), np.array(M, float)
    cards = np.array([card[k] for k in ids])
    y = np.array([lab[k] for k in ids], float)
    t = np.array([tm[k] for k in ids])
    has = ~np.isnan(M)
    for g in a.gate:
        name, pts = g.split(":")
        hit = np.array([name in h for h in H])
        S = S - np.where(hit & has, float(pts), 0.0)
    first = t[has][0] if has.any() else None
    Mz = np.where(has, M, -1.0)
    alerted = np.array([d in ("review", "decline") for d in D])
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
        alert = alerted[m]
        tp = (alert & (yy == 1)).sum()
        print("  %-18s rows %7d frauds %5d  score AUC %.4f AP %.4f CP@100 %.4f  "
              "model.score AUC %.4f AP %.4f CP@100 %.4f  "
              "alert %.2f%% precision %.1f%% recall %.1f%%" % (
                  name, m.sum(), yy.sum(), metric_auc(S[m], yy), metric_ap(S[m], yy),
                  card_precision(S[m], yy, cards[m], t[m]),
                  metric_auc(Mz[m], yy), metric_ap(Mz[m], yy),
                  card_precision(Mz[m], yy, cards[m], t[m]), 100 * alert.mean(),
                  100 * tp / max(alert.sum(), 1), 100 * tp / max(yy.sum(), 1)))
    if a.calibration and len(sets) > 1:
        calibration(S[sets[1][1]] / 100.0, y[sets[1][1]])


# Score bands of the calibration table, as probabilities (upper bound open,
# the last one closed).
BANDS = (0, 0.005, 0.01, 0.02, 0.05, 0.10, 0.20, 0.30, 0.50, 0.70, 0.90, 1.0)


def calibration(p, y):
    """The reliability table, ECE and Brier score of probabilities p
    against labels y (1 fraud, 0 not)."""
    if len(p) == 0:
        return
    print("  calibration (rows after the first model; predicted = score / 100):")
    print("    %-13s %9s %7s %10s %10s" % ("band", "rows", "frauds", "predicted", "observed"))
    ece = ece_hi = 0.0
    n_hi = 0
    for lo, hi in zip(BANDS, BANDS[1:]):
        m = (p >= lo) & ((p < hi) if hi < 1.0 else (p <= hi))
        n = int(m.sum())
        if n == 0:
            continue
        pred, obs = float(p[m].mean()), float(y[m].mean())
        ece += n * abs(pred - obs)
        if lo >= BANDS[1]:
            ece_hi += n * abs(pred - obs)
            n_hi += n
        print("    [%.3f,%.3f%s %9d %7d %9.2f%% %9.2f%%" % (
            lo, hi, "]" if hi >= 1.0 else ")", n, int(y[m].sum()), 100 * pred, 100 * obs))
    print("    ECE %.4f (rows predicted >= %.1f%%: %.4f), Brier %.5f, mean predicted %.4f%%, "
          "fraud rate %.4f%%" % (
              ece / len(p), 100 * BANDS[1], ece_hi / n_hi if n_hi else float("nan"),
              float(np.mean((p - y) ** 2)), 100 * float(p.mean()), 100 * float(y.mean())))


def card_precision(s, y, cards, t, k=100):
    """vigil-replay's card precision top k per day (tools/replay/metrics.c):
    per UTC day each card's highest score, the k highest cards (ties by card
    id), the share with a fraud that day; a card caught (fraudulent in the
    top k) is left out of later days; the mean over days."""
    days = np.array([x[:10] for x in t])
    caught, precs = set(), []
    for d in sorted(set(days)):
        best, fraud = {}, {}
        for i in np.nonzero(days == d)[0]:
            c = cards[i]
            if c in caught:
                continue
            best[c] = max(best.get(c, -np.inf), s[i])
            fraud[c] = fraud.get(c, False) or y[i] == 1
        if not best:
            continue
        top = sorted(best, key=lambda c: (-best[c], c))[:k]
        hits = [c for c in top if fraud[c]]
        caught.update(hits)
        precs.append(len(hits) / len(top))
    return float(np.mean(precs)) if precs else float("nan")


if __name__ == "__main__":
    main()
