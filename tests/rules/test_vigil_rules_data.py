# SPDX-License-Identifier: MIT
"""tests/rules/test_vigil_rules_data.py - vigil-rules explain --data on a real
data directory made by vigil-gen + vigil-replay --nightly (a model trained):
the transaction is scored by the pipeline on the current generation's
features, thresholds and model; the model's score and reasons are shown and
feed the rules; the input's "features" are applied before the model reads
them; a model.score given in the input is not overwritten; nothing in the
data directory is written; without --data there is neither "data" nor
"model". Usage: test_vigil_rules_data.py VIGIL-RULES VIGIL-GEN VIGIL-REPLAY
RULES-FILE"""
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

RULES_TOOL, GEN, REPLAY, RULES = sys.argv[1:5]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, check=False)


def snapshot(top):
    """Every path under top with its size, mtime and content hash."""
    out = {}
    for d, _, files in os.walk(top):
        out[d] = os.stat(d).st_mtime_ns
        for f in files:
            p = os.path.join(d, f)
            st = os.stat(p)
            with open(p, "rb") as fh:
                h = hashlib.sha256(fh.read()).hexdigest()
            out[p] = (st.st_size, st.st_mtime_ns, h)
    return out


def explain(txn, data=None, json_out=True, features=None):
    doc = {"txn": txn}
    if features is not None:
        doc["features"] = features
    args = [RULES_TOOL, "explain"]
    if json_out:
        args.append("--json")
    if data is not None:
        args += ["--data", data]
    args += [RULES, "--txn", json.dumps(doc)]
    return run(*args)


def reads_of(doc, rule, name):
    for r in doc["rules"]:
        if r["name"] == rule:
            for rd in r["reads"]:
                if rd["name"] == name:
                    return rd["value"]
    raise KeyError(rule + "/" + name)


tmp = tempfile.mkdtemp(prefix="vigil-rules-data-")
try:
    data = os.path.join(tmp, "data")
    rows = os.path.join(tmp, "gen.csv")
    r = run(GEN, "--cards", "300", "--days", "20", "--seed", "1", "--fraud-rate", "0.05",
            "--start", "2024-01-01", "--output", rows, "--quiet")
    assert r.returncode == 0, r.stderr
    r = run(REPLAY, "--csv", rows, "--nightly", "--work", data, "--rules", RULES, "--quiet")
    assert r.returncode == 0, r.stderr
    with open(os.path.join(data, "features", "CURRENT")) as fh:
        current = int(fh.read().strip().split("-")[-1])
    assert os.path.exists(os.path.join(data, "features", "gen-%06d" % current))

    # a card of the file, scored at the generation's as-of (2024-01-20)
    with open(rows) as fh:
        first = next(csv.DictReader(fh))
    card = first["card_id"]
    with open(rows) as fh:
        before = [x for x in csv.DictReader(fh)
                  if x["card_id"] == card and x["event_time"] < "2024-01-20"]
    txn = {"txn_id": "explain-1", "card_id": card, "merchant_id": first["merchant_id"],
           "terminal_id": first["terminal_id"], "currency": "EUR", "amount": 950,
           "event_time": "2024-01-20T03:00:00Z", "mcc": 5411, "country": "US",
           "channel": "ecom"}
    snap = snapshot(data)

    # JSON: the generation, the model and its reasons, the batch features
    r = explain(txn, data)
    check(r.returncode == 0, "explain --data: exit %d: %s" % (r.returncode, r.stderr))
    doc = json.loads(r.stdout)
    check(doc["data"]["generation"] == current,
          "data.generation %s, CURRENT names %d" % (doc["data"].get("generation"), current))
    check(doc["data"]["as_of"] == "2024-01-20T00:00:00.000Z", "as_of " + str(doc["data"]))
    m = doc.get("model")
    check(m is not None, "no model with --data on a generation that has one")
    if m is not None:
        check(0 < m["score"] < 1, "model.score %r" % m["score"])
        check(1 <= len(m["reasons"]) <= 3, "reasons %r" % m["reasons"])
        check(all(x["contribution"] > 0 for x in m["reasons"]), "contributions %r" % m["reasons"])
        # the rules read the model's score
        check(reads_of(doc, "amount_above_card_max", "model.score") == m["score"],
              "rules read model.score %r, model says %r"
              % (reads_of(doc, "amount_above_card_max", "model.score"), m["score"]))
        # the score is the model's calibrated probability (model.meta's
        # Platt calibration: strictly increasing, so it ranks as model.score)
        check(0 < m["calibrated"] < 1, "calibrated %r" % m.get("calibrated"))
        check(abs(doc["score"] - 100 * m["calibrated"]) < 1e-9,
              "score %r, calibrated model.score %r" % (doc["score"], m["calibrated"]))
        hour = [x for x in m["reasons"] if x["feature"] == "hour"]
        if hour:
            check(hour[0]["value"] == 3, "reason hour=%r for 03:00" % hour[0]["value"])
    # the card's profile is the generation's: its 90-day count is the
    # number of its rows before the as-of (20 days of data)
    check(reads_of(doc, "amount_above_card_max", "card.count_90d") == len(before),
          "card.count_90d %r, the file has %d rows of %s before the as-of"
          % (reads_of(doc, "amount_above_card_max", "card.count_90d"), len(before), card))
    check(reads_of(doc, "card_testing_burst", "vel.card.small_count_10m") is None,
          "velocity is not read from a data directory")

    # text: the same, one line each
    r = explain(txn, data, json_out=False)
    check(r.returncode == 0, "explain --data text: exit %d" % r.returncode)
    lines = r.stdout.splitlines()
    check(lines[0] == "data: %s, generation %d (as of 2024-01-20T00:00:00.000Z)"
          % (data, current), "text line 1: " + lines[0])
    check(lines[2].startswith("model: score %.6g  reasons: " % m["score"]),
          "text model line: " + lines[2])
    check(("decision: %s  score: %.6g " % (doc["decision"], doc["score"])) in r.stdout,
          "text decision differs from JSON")

    # the input's features are set before the model reads them: another
    # hour gives another score (hour is a model input)
    r2 = explain(txn, data, features={"hour": 14})
    doc2 = json.loads(r2.stdout)
    check(doc2["model"]["score"] != m["score"], "an input feature did not reach the model")
    check(reads_of(doc2, "amount_above_card_max", "card.count_90d") == len(before),
          "an override of one feature changed another")

    # a model.score in the input is the one the rules read; the model is not run
    r3 = explain(txn, data, features={"model.score": 0.99})
    doc3 = json.loads(r3.stdout)
    check("model" not in doc3, "model run over a given model.score")
    check(doc3["decision"] == "decline", "model.score 0.99 gives %s" % doc3["decision"])
    check(abs(doc3["score"] - 99) < 1e-9, "model.score 0.99 gives score %r" % doc3["score"])
    r3 = explain(txn, data, json_out=False, features={"model.score": 0.99})
    check("model: not evaluated (model.score given in the input)" in r3.stdout, r3.stdout[:300])

    # without --data: no generation, no model, velocity and profile missing
    r4 = explain(txn)
    doc4 = json.loads(r4.stdout)
    check("data" not in doc4 and "model" not in doc4, "no-data output has data/model")
    check(reads_of(doc4, "amount_above_card_max", "card.count_90d") is None,
          "no-data: card.count_90d present")
    check(reads_of(doc4, "amount_above_card_max", "model.score") is None, "no-data: model.score")

    # nothing in the data directory was written
    check(snapshot(data) == snap, "the data directory changed")

    # a missing or non-directory --data is a usage error on one line
    r5 = explain(txn, os.path.join(tmp, "nope"))
    check(r5.returncode == 2, "missing --data: exit %d" % r5.returncode)
    check(r5.stderr == "vigil-rules: --data %s: No such file or directory\n"
          % os.path.join(tmp, "nope"), "missing --data: " + r5.stderr)
    r6 = explain(txn, rows)
    check(r6.returncode == 2 and r6.stderr.endswith(": not a directory\n"),
          "--data FILE: " + r6.stderr)
    # a directory with neither features/ nor archive/ is a mistyped path:
    # refused, not explained as "no feature generation"
    stray = os.path.join(tmp, "stray")
    os.mkdir(stray)
    r7 = explain(txn, stray)
    check(r7.returncode == 2 and r7.stdout == "" and r7.stderr ==
          "vigil-rules: --data %s: not a vigild data directory (no features/ or archive/ "
          "in it)\n" % stray, "--data stray dir: exit %d: %s" % (r7.returncode, r7.stderr))
    os.mkdir(os.path.join(stray, "archive"))
    r8 = explain(txn, stray, json_out=False)  # vigild started, no nightly yet
    check(r8.returncode == 0 and r8.stdout.startswith(
          "data: %s, no feature generation" % stray),
          "--data with archive/ only: exit %d: %s" % (r8.returncode, r8.stderr + r8.stdout[:200]))
finally:
    if os.environ.get("VIGIL_KEEP_TEST_DATA") is None:
        shutil.rmtree(tmp, ignore_errors=True)

if failures:
    print("%d failures" % len(failures), file=sys.stderr)
    sys.exit(1)
print("vigil-rules explain --data: all checks passed")
