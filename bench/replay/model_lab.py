#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/replay/model_lab.py - offline experiments on the nightly model.

Replays the model's side of `vigil-replay --nightly` fast, from the vectors a
replay archived (bench/replay/dump_vectors.c; a `--nightly --no-model` replay
archives them too, and fast): every EVERY days an as-of midnight D (or the
days --only names), a model trained as batch/train.c does (window of WINDOW
days ending at D - 7 d, legitimate rows sampled to 100,000 with day weights,
validation on the last quarter of the days, early stopping there, refit on
every row, Platt calibration on the validation predictions), which then
scores the rows of [D, D + EVERY days). Prints the ROC AUC and AP of
model.score alone over the rows from --measure-from, per fraud_pattern when
the CSV has one, the spread of the trainings' validation AP and rounds, and
how well the raw and the calibrated probabilities fit; with --results the
same of the replay's own ranking (score, then model.score).

Approximations of batch/train.c: the legitimate sample is drawn by crc32 of
the txn_id (train.c: a remix of xxh64), and XGBoost's Python matrices take
the rows in one batch (train.c: 65,536 rows a batch, which moves bins).

A tool to choose what to try in batch/train.c; the figures that count are
the full nightly replay's (bench/replay/model.sh). Needs python3-numpy and
python3-xgboost (Debian). Labels: the CSV's label column (all of them are
known 7 days later, as with --label-delay 7d --force-label-delay).

With --calib SCHEME ..., it also ranks the rows a model scored by each
night's calibrated probability under each calibration scheme (CALIB: the
prior and trust of batch/train.c, trust from the validation frauds, a fit
on the rows earlier models scored once mature, a fit of the intercept or
slope alone, and "oracle", a fit on the scored days' own labels, the bound
no calibration from the past reaches) and prints the pooled AP and the AP
per month: how comparable the nights' scores are. --save-nights keeps the
trainings (validation and scored predictions) and --load-nights reuses
them, so schemes compare in seconds.

usage: model_lab.py PREFIX CSV [--results FILE] [--measure-from YYYY-MM-DD]
                    [--every N] [--variant NAME ...] [--threads N] [--extra FILE.npy ...]
                    [--calib SCHEME ...] [--save-nights F | --load-nights F]
"""
import argparse
import csv
import datetime as dt
import json
import pickle
import sys
import time
import zlib

import re

import numpy as np
import xgboost as xgb

DAY = 86400000


def load(prefix, csv_path):
    names = [l.strip() for l in open(prefix + ".names")]
    txn, card, t, score = [], [], [], []
    for line in open(prefix + ".meta"):
        a, b, c, d = line.rstrip("\n").split("\t")
        txn.append(a)
        card.append(b)
        t.append(int(c))
        score.append(int(d))
    x = np.fromfile(prefix + ".f32", dtype="<f4").reshape(len(txn), len(names))
    lab, pat = {}, {}
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            lab[r["txn_id"]] = 1 if r.get("label", "0") in ("1", "true", "fraud") else 0
            if r.get("fraud_pattern"):
                pat[r["txn_id"]] = r["fraud_pattern"]
    y = np.array([lab.get(k, 0) for k in txn], dtype=np.float32)
    pattern = np.array([pat.get(k, "") for k in txn])
    return names, txn, card, np.array(t, dtype=np.int64), np.array(score), x, y, pattern


def metric_auc(s, y):
    o = np.argsort(s, kind="mergesort")
    s, y = s[o], y[o]
    # ranks with ties averaged
    _, inv, cnt = np.unique(s, return_inverse=True, return_counts=True)
    csum = np.cumsum(cnt)
    avg = csum - (cnt - 1) / 2.0
    r = avg[inv]
    npos = y.sum()
    nneg = len(y) - npos
    return (r[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg)


def metric_ap(s, y):
    o = np.argsort(-s, kind="mergesort")
    s, y = s[o], y[o]
    tp = np.cumsum(y)
    n = np.arange(1, len(y) + 1)
    last = np.r_[s[1:] != s[:-1], True]
    tp, n = tp[last], n[last]
    prec = tp / n
    rec = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0, rec]) * prec))


def h32(s):
    return zlib.crc32(s.encode())


# Each variant is the nightly training of batch/rebuild.c before the change of
# issue 23 ("old": eta 0.2, depth 6, min_child_weight 5, lambda 10, at most
# 200 rounds, early stop after 20 on validation AP, refit, bins from the
# training weights) with the keys it names changed; "new" is what train.c
# does now (bins from class-balanced weights, early stopping on logloss).
OLD = {}
NEW = {"bins": "balanced", "stop": "logloss", "min_rounds": 20}
VARIANTS = {
    "old": OLD,
    "new": NEW,
    "balanced": {"bins": "balanced"},
    "balanced_ap_min20": {"bins": "balanced", "min_rounds": 20},
    "new_es30": dict(NEW, es=30),
    "logloss": {"stop": "logloss"},
    "norefit": {"refit": False},
    "card": {"split": "card"},
    "reg": {"mcw": 20, "depth": 4, "subsample": 0.8, "colsample": 0.8},
    "eta01": {"eta": 0.1, "rounds": 300, "es": 30},
    "noabs": {"drop": "abs"},
    "gap": {"gap": 3},
    "mds1": {"mds": 1},
    "lambda1": {"lambda": 1},
    "lpf02": dict(NEW, lpf=0.02),
    "lpf01": dict(NEW, lpf=0.01),
    "es50": dict(NEW, es=50),
    "fixed80": dict(NEW, es=0, rounds=80),
}

# Absolute per-card levels a tree can recognise a card by (hypothesis 2).
ABS = ["card.count_7d", "card.count_30d", "card.count_90d", "card.amount_sum_7d",
       "card.amount_sum_30d", "card.amount_sum_90d", "card.amount_mean_7d",
       "card.amount_mean_30d", "card.amount_mean_90d", "card.amount_std_30d",
       "card.amount_std_90d", "card.amount_p50_90d", "card.amount_p95_90d",
       "card.amount_p99_90d", "card.amount_max_90d", "card.distinct_merchants_90d",
       "card.age_days"]


def platt_fit(p, y, w):
    """A weighted logistic regression of y on logit(p) (Platt's targets), no
    prior: platt_map below; (a, b) or None."""
    return platt_map(logit(p), y, w)


def train_one(X, y, w, tr, va, names, v, threads, seed, keep=None):
    """One night as batch/train.c trains it: hist on a quantile matrix whose
    bins come from class-balanced weights ("bins": "balanced"), early
    stopping on the validation days, refit on every row, Platt calibration
    on the first model's validation predictions. Returns the served booster,
    its rounds, the validation AP and the calibration (a, b) or None."""
    p = {
        "objective": "binary:logistic", "tree_method": "hist", "max_bin": v.get("bins_n", 256),
        "eta": v.get("eta", 0.2), "max_depth": v.get("depth", 6),
        "min_child_weight": v.get("mcw", 5), "nthread": threads, "seed": seed,
        "subsample": v.get("subsample", 1.0), "colsample_bytree": v.get("colsample", 1.0),
        "lambda": v.get("lambda", 10.0), "verbosity": 0,
        "max_delta_step": v.get("mds", 0),
    }
    p["base_score"] = float((w[tr] * y[tr]).sum() / w[tr].sum())
    if "lpf" in v:
        # lambda in proportion to the frauds' weight: a leaf's shrinkage
        # G / (H + lambda) the same share of H on nights with few frauds
        p["lambda"] = v["lpf"] * float(w[tr][y[tr] == 1].sum())
    if v.get("stop", "ap") == "ap":
        p["eval_metric"] = ["logloss", "aucpr"]
    else:
        p["eval_metric"] = ["aucpr", "logloss"]

    def matrix(ix):
        ref = None
        if v.get("bins", "plain") == "balanced":
            wb = w[ix].astype(np.float64)
            pos = y[ix] == 1
            share = v.get("bins_share", 0.5)  # the frauds' share of the sketch's weight
            wb[pos] *= share / (1 - share) * wb[~pos].sum() / wb[pos].sum()
            ref = xgb.QuantileDMatrix(X[ix], label=y[ix], weight=wb.astype(np.float32),
                                      max_bin=p["max_bin"], missing=np.nan, nthread=threads)
        return xgb.QuantileDMatrix(X[ix], label=y[ix], weight=w[ix], max_bin=p["max_bin"],
                                   missing=np.nan, nthread=threads, ref=ref)
    dtr = matrix(tr)
    dva = xgb.DMatrix(X[va], label=y[va], weight=w[va], missing=np.nan)
    es = v.get("es", 20)
    b = xgb.train(p, dtr, num_boost_round=v.get("rounds", 200), evals=[(dva, "valid")],
                  early_stopping_rounds=es if es else None, verbose_eval=False)
    best = b.best_iteration + 1 if es else v.get("rounds", 200)
    best = max(best, min(v.get("min_rounds", 0), v.get("rounds", 200)))
    if best < b.num_boosted_rounds():
        b = b[:best]
    pv = b.predict(dva)
    vap = metric_ap_w(pv, y[va], w[va])
    cal = platt_fit(pv, y[va], w[va].astype(np.float64))
    if v.get("refit", True):
        al = np.concatenate([tr, va])
        p["base_score"] = float((w[al] * y[al]).sum() / w[al].sum())
        if "lpf" in v:
            p["lambda"] = v["lpf"] * float(w[al][y[al] == 1].sum())
        b = xgb.train(p, matrix(al), num_boost_round=best, verbose_eval=False)
    if keep is not None:
        keep["pv"] = pv
        keep["pr"] = b.predict(dva)
        keep["y"] = y[va]
        keep["w"] = w[va].astype(np.float64)
    return b, best, vap, cal


def metric_ap_w(s, y, w):
    o = np.argsort(-s, kind="mergesort")
    s, y, w = s[o], y[o], w[o].astype(np.float64)
    tp = np.cumsum(w * y)
    n = np.cumsum(w)
    last = np.r_[s[1:] != s[:-1], True]
    tp, n = tp[last], n[last]
    return float(np.sum(np.diff(np.r_[0, tp / tp[-1]]) * tp / n))


EPS = 2.0 ** -24


def logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def platt_map(z, y, w, prior=None):
    """batch/calib.c's batch_calib_platt on log-odds z: Platt's targets, a
    Gaussian prior (a0, b0, sd_a, sd_b) or none; (a, b) or None."""
    n1 = float(w[y == 1].sum())
    n0 = float(w[y != 1].sum())
    if not (n1 > 0 and n0 > 0):
        return None
    t = np.where(y == 1, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))
    a, b = (prior[0], prior[1]) if prior else (1.0, 0.0)

    def f(a, b):
        m = a * z + b
        r = float((w * (np.logaddexp(0, m) - t * m)).sum())
        if prior:
            r += 0.5 * ((a - prior[0]) ** 2 / prior[2] ** 2 + (b - prior[1]) ** 2 / prior[3] ** 2)
        return r
    fv = f(a, b)
    for _ in range(100):
        q = 1 / (1 + np.exp(-(a * z + b)))
        r = w * (q - t)
        h = w * q * (1 - q)
        gz, g1 = (r * z).sum(), r.sum()
        hzz, hz, h11 = (h * z * z).sum(), (h * z).sum(), h.sum()
        if prior:
            gz += (a - prior[0]) / prior[2] ** 2
            g1 += (b - prior[1]) / prior[3] ** 2
            hzz += 1 / prior[2] ** 2
            h11 += 1 / prior[3] ** 2
        det = hzz * h11 - hz * hz
        if not det > 1e-12 * hzz * h11:
            return None
        da = (h11 * gz - hz * g1) / det
        db = (hzz * g1 - hz * gz) / det
        step = 1.0
        while step >= 1 / 1024:
            fn = f(a - step * da, b - step * db)
            if fn <= fv:
                break
            step /= 2
        if step < 1 / 1024:
            break
        a, b, fv = a - step * da, b - step * db, fn
        if abs(step * da) < 1e-9 * (1 + abs(a)) and abs(step * db) < 1e-9 * (1 + abs(b)):
            break
    return (a, b) if np.isfinite(a) and np.isfinite(b) and a > 0 else None


def match_b(z, w, a, target, b0):
    """train.c's train_calib_match: the b at which the weighted mean of
    sigmoid(a z + b) is target."""
    def mean(b):
        return float((w / (1 + np.exp(-(a * z + b)))).sum() / w.sum())
    lo = hi = b0
    step = 1.0
    while mean(lo) > target and step < 1e3:
        lo -= step
        step *= 2
    step = 1.0
    while mean(hi) < target and step < 1e3:
        hi += step
        step *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        if mean(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


PRIOR = (1.0, 0.0, 0.25, 1.0)


def night_calib(nt, scheme):
    """(a, b) of the saved (refit) model of night nt under a calibration
    scheme: a dict with prior (a0, b0, sd_a, sd_b) or None, trust (a number,
    or "ev:K": validation frauds / (frauds + K))."""
    z, y, w = logit(nt["pv"]), nt["y"], nt["w"]
    pr = scheme.get("prior", PRIOR)
    fit = platt_map(z, y, w, pr)
    if fit is None:
        return 1.0, 0.0
    a, b = fit
    target = float((w / (1 + np.exp(-(a * z + b)))).sum() / w.sum())
    if not scheme.get("nomatch"):
        b = match_b(logit(nt["pr"]), w, a, target, b)
    tr = scheme.get("trust", 0.25)
    if isinstance(tr, str) and tr.startswith("ev:"):
        k = float(tr[3:])
        f = float(y.sum())
        tr = f / (f + k)
    a0, b0 = (pr[0], pr[1]) if pr else (1.0, 0.0)
    a, b = a0 + tr * (a - a0), b0 + tr * (b - b0)
    return a, b


CALIB = {
    "raw": {"trust": 0.0},
    "cur": {},
    "map_t05": {"trust": 0.5},
    "map_t1": {"trust": 1.0},
    "flat_t1": {"prior": None, "trust": 1.0},
    "flat_ev50": {"prior": None, "trust": "ev:50"},
    "flat_ev200": {"prior": None, "trust": "ev:200"},
    "map_ev50": {"trust": "ev:50"},
    "map_ev200": {"trust": "ev:200"},
    "oracle": {"oracle": 1},
    "oot7": {"oot": 7},
    "oot14": {"oot": 14},
    "oot28": {"oot": 28},
    "oot14flat": {"oot": 14, "prior": None},
    "bonly_t1": {"prior": (1.0, 0.0, 1e-3, 1.0), "trust": 1.0},
    "bonly_flat": {"prior": (1.0, 0.0, 1e-3, 100.0), "trust": 1.0},
    "bonly_t05": {"prior": (1.0, 0.0, 1e-3, 1.0), "trust": 0.5},
    "bonly_ev50": {"prior": (1.0, 0.0, 1e-3, 100.0), "trust": "ev:50"},
    "nomatch": {"nomatch": 1},
    "nomatch_t1": {"nomatch": 1, "trust": 1.0},
    "nomatch_t05": {"nomatch": 1, "trust": 0.5},
    "nomatch_flat": {"nomatch": 1, "prior": None, "trust": 1.0},
    "aonly_t1": {"prior": (1.0, 0.0, 0.25, 1e-3), "trust": 1.0},
}


def calib_report(y, t, pred, nights, m, schemes):
    """The pooled AP of the calibrated probability over the rows a model
    scored (and from --measure-from), per calibration scheme, and per month."""
    mm = m & ~np.isnan(pred)
    month = np.array([dt.datetime.utcfromtimestamp(x / 1000).strftime("%Y-%m") for x in t[mm]])
    months = sorted(set(month))
    print("  calibration schemes, pooled over %d rows a model scored (%d frauds); AP per month %s"
          % (mm.sum(), int(y[mm].sum()), " ".join(months)))
    for name in schemes:
        sch = CALIB[name] if name in CALIB else json.loads(name)
        c = np.full(len(t), np.nan)
        ab = []
        for nt in nights:
            kn = nt[5]
            if sch.get("oot"):
                # the rows earlier models scored that are mature by night D
                # (days [D - 7 - K, D - 7)), their served raw probability
                # against their labels; the validation fit until there are
                # min frauds
                D = kn["D"]
                day = t // DAY
                o = np.where((day >= D - 7 - sch["oot"]) & (day < D - 7) & ~np.isnan(pred))[0]
                if y[o].sum() >= sch.get("min", 20):
                    fit = platt_map(logit(pred[o]), y[o], np.ones(len(o)), sch.get("prior", PRIOR))
                    a, b = fit if fit else (1.0, 0.0)
                else:
                    a, b = night_calib(kn, sch.get("else", {}))
            elif sch.get("oracle"):
                sc = kn["sc"]
                fit = platt_map(logit(pred[sc]), y[sc], np.ones(len(sc)), PRIOR)
                a, b = fit if fit else (1.0, 0.0)
            else:
                a, b = night_calib(kn, sch)
            ab.append((a, b))
            sc = kn["sc"]
            c[sc] = 1 / (1 + np.exp(-(a * logit(pred[sc]) + b)))
        cs = np.round(100 * c[mm], 6)
        per = [metric_ap(cs[month == mo], y[mm][month == mo]) for mo in months]
        ab = np.array(ab)
        print("  %-28s AP %.4f AUC %.4f  months %s  a %.2f-%.2f b %.2f-%.2f" % (
            name[:28], metric_ap(cs, y[mm]), metric_auc(cs, y[mm]),
            " ".join("%.4f" % x for x in per), ab[:, 0].min(), ab[:, 0].max(),
            ab[:, 1].min(), ab[:, 1].max()), flush=True)


def simulate(data, v, every, threads, log, only=None):
    names, txn, card, t, score, X, y = data[:7]
    keep = np.ones(len(names), dtype=bool)
    if v.get("drop") == "abs":
        keep = np.array([n not in ABS for n in names])
    Xk = X[:, keep]
    nk = [n for n, k in zip(names, keep) if k]
    day = t // DAY
    d0 = day.min()
    dend = day.max() + 1
    pred = np.full(len(t), np.nan, dtype=np.float64)
    calp = np.full(len(t), np.nan, dtype=np.float64)
    nights = []
    mix = np.array([h32(k) for k in txn], dtype=np.uint64)
    cardh = np.array([h32(c) for c in card], dtype=np.uint64)
    window = v.get("window", 28)
    first = None
    for D in sorted(only) if only is not None else range(int(d0) + 1, int(dend), every):
        lo, hi = max(d0, D - 7 - window), D - 7
        win = np.where((day >= lo) & (day < hi))[0]
        if len(win) == 0 or y[win].sum() < 50:
            continue
        # sample the legitimate rows to the 100k cap, weights per day
        fr = win[y[win] == 1]
        lg = win[y[win] == 0]
        room = 100000 - len(fr)
        w = np.ones(len(t), dtype=np.float32)
        if len(lg) > room:
            o = np.argsort(mix[lg], kind="mergesort")
            kept = np.sort(lg[o[:room]])
            for dd in np.unique(day[lg]):
                nd = (day[lg] == dd).sum()
                kd = (day[kept] == dd).sum()
                if kd:
                    w[kept[day[kept] == dd]] = nd / kd
            lg = kept
        rows = np.sort(np.concatenate([fr, lg]))
        span = day[rows].max() - day[rows].min() + 1
        vd = max(1, min(span - 1, round(0.25 * span)))
        split = day[rows].max() - vd + 1
        gap = v.get("gap", 0)
        if v.get("split") == "card":
            va_mask = (cardh[rows] % 4) == 0
            tr, va = rows[~va_mask], rows[va_mask]
        else:
            tr = rows[day[rows] < split - gap]
            va = rows[day[rows] >= split]
        if y[tr].sum() == 0 or y[va].sum() == 0:
            continue
        t0 = time.time()
        night = {}
        b, best, vap, cal = train_one(Xk, y, w, tr, va, nk, v, threads, 0, night)
        sc = np.where((day >= D) & (day < D + every))[0]
        night["D"] = D
        night["sc"] = sc
        if len(sc):
            pred[sc] = b.predict(xgb.DMatrix(Xk[sc], missing=np.nan))
            if cal is not None:
                q = np.clip(pred[sc], 2.0 ** -24, 1 - 2.0 ** -24)
                calp[sc] = 1 / (1 + np.exp(-(cal[0] * np.log(q / (1 - q)) + cal[1])))
            else:
                calp[sc] = pred[sc]
        nights.append((D, best, vap, cal, time.time() - t0, night))
        if first is None:
            first = D
        if log:
            print("  %s rows %d frauds %d best %d valid AP %.4f calibration %s  %.1fs" % (
                dt.date(1970, 1, 1) + dt.timedelta(days=D), len(tr) + len(va),
                int(y[rows].sum()), best, vap,
                "a %.3f b %.3f" % cal if cal else "none", time.time() - t0), file=sys.stderr)
    return pred, calp, first, nights


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prefix")
    ap.add_argument("csv")
    ap.add_argument("--results")
    ap.add_argument("--measure-from")
    ap.add_argument("--every", type=int, default=7)
    ap.add_argument("--only", nargs="*", help="as-of days YYYY-MM-DD to train on, instead of one "
                    "every EVERY days: only the rows of [D, D + EVERY days) are scored and measured")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variant", nargs="*", default=["base"])
    ap.add_argument("--rules-results", help="a --no-model replay's results: with --rules, "
                    "also rank by the rule points that stay when a model exists")
    ap.add_argument("--rules", help="the rule file of that replay")
    ap.add_argument("--save", help="write the predictions of each variant to SAVE.VARIANT.npy")
    ap.add_argument("--extra", nargs="*", default=[],
                    help="candidate inputs: FILE.npy (float32, one row per row of PREFIX.meta, "
                    "NaN = missing) with FILE.names beside it (one name a line), appended to "
                    "the vectors to try a feature before writing it in batch/")
    ap.add_argument("--calib", nargs="*", help="calibration schemes (CALIB's names or JSON) "
                    "to compare by the pooled AP of the calibrated probability")
    ap.add_argument("--save-nights", help="pickle the nights (validation and scored "
                    "predictions) to this file, for --load-nights")
    ap.add_argument("--load-nights", help="skip training: the nights of --save-nights")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    data = load(a.prefix, a.csv)
    for e in a.extra:
        ex = np.load(e).astype(np.float32)
        en = [l.strip() for l in open(e[:-len(".npy")] + ".names") if l.strip()]
        if ex.shape != (len(data[1]), len(en)):
            sys.exit("model_lab: %s: shape %s, not (%d rows, %d names)" % (
                e, ex.shape, len(data[1]), len(en)))
        data = (data[0] + en,) + data[1:5] + (np.hstack([data[5], ex]),) + data[6:]
    names, txn, card, t, score, X, y, pattern = data
    m = np.ones(len(t), dtype=bool)
    if a.measure_from:
        ms = int(dt.datetime.fromisoformat(a.measure_from).replace(
            tzinfo=dt.timezone.utc).timestamp() * 1000)
        m = t >= ms
    print("rows %d (measured %d, frauds %d), %d inputs" % (len(t), m.sum(), y[m].sum(), len(names)), flush=True)
    if a.results:
        ms_, rs = {}, {}
        for line in open(a.results):
            r = json.loads(line)
            rs[r["txn_id"]] = r["score"]
            ms_[r["txn_id"]] = r.get("model", {}).get("score", -1.0)
        s = np.array([rs[k] for k in txn], dtype=np.float64)
        ms2 = np.array([ms_[k] for k in txn], dtype=np.float64)
        comb = s + np.clip(ms2, 0, 1) * 0.999
        print("%-14s AUC %.4f AP %.4f" % ("served rank", metric_auc(comb[m], y[m]), metric_ap(comb[m], y[m])))
        print("%-14s AUC %.4f AP %.4f" % ("served model", metric_auc(ms2[m], y[m]), metric_ap(ms2[m], y[m])))
    hard = None
    if a.rules_results:
        pts = {}
        src = open(a.rules).read()
        for mm in re.finditer(r"\nrule (\w+) \{(.*?)\n\}", src, re.S):
            body = mm.group(2)
            mode = re.search(r"mode (\w+)", body)
            if mode or "model.score" in body:
                continue
            pts[mm.group(1)] = int(re.search(r"score (-?\d+)", body).group(1))
        hs = {}
        for line in open(a.rules_results):
            r = json.loads(line)
            hs[r["txn_id"]] = sum(pts.get(h, 0) for h in r["hits"])
        hard = np.array([hs[k] for k in txn], dtype=np.float64)
        print("ungated rules: %s" % " ".join(sorted(pts)))
    for name in a.variant:
        v = VARIANTS[name] if name in VARIANTS else json.loads(name)
        t0 = time.time()
        only = None
        if a.only:
            only = {(dt.date.fromisoformat(d) - dt.date(1970, 1, 1)).days for d in a.only}
        if a.load_nights:
            with open(a.load_nights, "rb") as f:
                pred, calp, first, nights = pickle.load(f)
        else:
            pred, calp, first, nights = simulate(data, v, a.every, a.threads, a.v, only)
        if a.save_nights:
            with open(a.save_nights, "wb") as f:
                pickle.dump((pred, calp, first, nights), f)
        if only is not None:
            m = m & ~np.isnan(pred)
        p = np.where(np.isnan(pred), -1.0, pred)
        if a.save:
            np.save("%s.%s.npy" % (a.save, name if name in VARIANTS else "custom"), pred)
        print("%-14s AUC %.4f AP %.4f  (first model %s, %.0f s)" % (
            name[:14], metric_auc(p[m], y[m]), metric_ap(p[m], y[m]),
            dt.date(1970, 1, 1) + dt.timedelta(days=int(first)) if first else None,
            time.time() - t0), flush=True)
        for pat in sorted(set(pattern[m & (y == 1)]) - {""}):
            sel = m & ((y == 0) | (pattern == pat))
            print("  pattern %-22s frauds %5d  AUC %.4f AP %.4f" % (
                pat, int(((pattern == pat) & m).sum()), metric_auc(p[sel], y[sel]),
                metric_ap(p[sel], y[sel])))
        if nights:
            r = np.array([n[1] for n in nights], dtype=float)
            va = np.array([n[2] for n in nights])
            sec = np.array([n[4] for n in nights])
            ncal = sum(1 for n in nights if n[3] is not None)
            print("  %d trainings: rounds min %d median %d max %d; validation AP min %.4f "
                  "median %.4f max %.4f, mean night-to-night change %.4f; calibrated %d; "
                  "%.1f s a training (median)" % (
                      len(nights), r.min(), np.median(r), r.max(), va.min(), np.median(va),
                      va.max(), np.mean(np.abs(np.diff(va))) if len(va) > 1 else 0, ncal,
                      np.median(sec)))
            mm = m & ~np.isnan(pred)
            for lab, q in (("raw", pred[mm]), ("calibrated", calp[mm])):
                qq = np.clip(q, 1e-7, 1 - 1e-7)
                ll = -np.mean(y[mm] * np.log(qq) + (1 - y[mm]) * np.log(1 - qq))
                hi = qq >= 0.5
                print("  %-10s mean p %.5f (fraud rate %.5f), logloss %.5f, "
                      "rows p >= 0.5: %d, %.1f%% fraud" % (
                          lab, qq.mean(), y[mm].mean(), ll, hi.sum(),
                          100 * y[mm][hi].mean() if hi.any() else float("nan")))
        if a.calib:
            calib_report(y, t, pred, nights, m, a.calib)
        if hard is not None:
            q = np.clip(p, 0, 1)
            mm = m & (p >= 0)
            # the bands at the scores where 30% and 90% of the measured
            # alerts were fraud (hindsight: an upper bound for the tuning)
            o = np.argsort(-q[mm])
            prec = np.cumsum(y[mm][o]) / np.arange(1, mm.sum() + 1)
            def at(pr):
                ok = np.where(prec >= pr)[0]
                return q[mm][o][ok[-1]] if len(ok) else 2.0
            t30, t90 = at(0.3), at(0.9)
            band = 40 * (q >= t30) + 40 * (q >= t90)
            for lab, sc in (("hard+bands", hard + band + q * 0.999),
                            ("hard+100p", hard + 100 * q),
                            ("hard+band+100p", hard + band + 100 * q)):
                print("  %-16s AUC %.4f AP %.4f" % (lab, metric_auc(sc[m], y[m]), metric_ap(sc[m], y[m])))


if __name__ == "__main__":
    main()
