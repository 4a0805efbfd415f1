#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/tools/test_replay_exact.py - the exact back-test reproduces
production (issue 24): vigil-replay --exact and the console's back-test on
a real vigild's archive, with the model on.

A data directory is made by the real nightly cycle offline (vigil-gen, 20
days, through vigil-replay --nightly: its current generation has a model).
The real vigild then serves it and scores two more days (vigil-score), each
reply with a model score. On that archive, read independently with
vigil-archive dump:

- vigil-replay --exact with the unchanged rules/default.rules changes no
  decision, every row is exact, and its decisions and scores are the
  archive's, row for row (the counts of each decision equal);
- with `band review` set to 20 (the default file tunes it: `review_at`,
  fallback 40), the decisions that change are exactly the archived allows
  whose archived score is 20 or more, as allow -> review;
- the console's POST /api/rules/backtest says it ran in exact mode, shows 0
  changes for the unchanged file and, for the band change, lists exactly
  those transactions (of its window) by txn_id.

Usage: test_replay_exact.py BUILD_ROOT SOURCE_ROOT
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

B, S = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(S, "tests", "lib"))
from vt_port import free_port  # noqa: E402
GEN = os.path.join(B, "tools/gen/vigil-gen")
REPLAY = os.path.join(B, "tools/replay/vigil-replay")
VIGILD = os.path.join(B, "server/vigild")
SCORE = os.path.join(B, "tools/score/vigil-score")
ARCHIVE = os.path.join(B, "tools/archive/vigil-archive")
CONSOLE = os.path.join(B, "console/vigil-console")
TOKEN = "rita-editor-token-exact-0001"
NEW_BAND = 20
OLD_BAND = "review_at"  # rules/default.rules: the review band the nightly tunes
LIVE_FROM = "2024-01-21"
LIVE_FROM_MS = 1705795200000  # 2024-01-21T00:00:00Z

failures = []


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    failures.append(msg)


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def must(args, what):
    r = run(args)
    if r.returncode != 0:
        print(f"FAIL: {what}: exit {r.returncode}: {r.stderr[-2000:]}", file=sys.stderr)
        sys.exit(1)
    return r


def wait_for(path, needle, proc, what, secs=60):
    end = time.time() + secs
    while time.time() < end:
        if os.path.exists(path) and needle in open(path, errors="replace").read():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    print(f"FAIL: {what}: {open(path, errors='replace').read()[-2000:] if os.path.exists(path) else ''}",
          file=sys.stderr)
    sys.exit(1)


def dump(datadir):
    """The archive's score records, by the archive's own reader."""
    r = must([ARCHIVE, "dump", os.path.join(datadir, "archive")], "vigil-archive dump")
    recs = []
    for line in r.stdout.splitlines():
        d = json.loads(line)
        if d.get("type") == "score":
            recs.append(d)
    return recs


def exact(datadir, rules, t, name):
    res, summ = os.path.join(t, name + ".jsonl"), os.path.join(t, name + ".json")
    r = run([REPLAY, "--archive", datadir, "--exact", "--from", LIVE_FROM, "--rules", rules,
             "--results", res, "--summary", summ, "-q"])
    if r.returncode != 0:
        fail(f"vigil-replay --exact --rules {rules}: exit {r.returncode}: {r.stderr[-2000:]}")
        return None, []
    return json.load(open(summ)), [json.loads(x) for x in open(res)]


def http(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + TOKEN,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as f:
            return f.status, json.loads(f.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main():
    t = tempfile.mkdtemp(prefix="vigil-exact-")
    procs = []
    try:
        # the rules and their list files together: the edited copy resolves them too
        rdir = os.path.join(t, "rules")
        shutil.copytree(os.path.join(S, "rules"), rdir)
        rules = os.path.join(rdir, "default.rules")
        text = open(rules).read()
        if f"band review = {OLD_BAND}\n" not in text:
            fail(f"rules/default.rules: no 'band review = {OLD_BAND}' line")
            return
        edited = os.path.join(rdir, "edited.rules")
        with open(edited, "w") as f:
            f.write(text.replace(f"band review = {OLD_BAND}\n", f"band review = {NEW_BAND}\n"))

        # 22 days of traffic: 20 through the offline nightly cycle, 2 through vigild
        csv = os.path.join(t, "all.csv")
        must([GEN, "--cards", "300", "--days", "22", "--seed", "1", "--fraud-rate", "0.05",
              "--start", "2024-01-01", "-o", csv, "-q"], "vigil-gen")
        lines = open(csv).read().splitlines()
        head = lines[0].split(",")
        it = head.index("event_time")
        hist = [lines[0]] + [x for x in lines[1:] if x.split(",")[it] < LIVE_FROM]
        live = [lines[0]] + ["live-" + x for x in lines[1:] if x.split(",")[it] >= LIVE_FROM]
        open(os.path.join(t, "hist.csv"), "w").write("\n".join(hist) + "\n")
        open(os.path.join(t, "live.csv"), "w").write("\n".join(live) + "\n")
        data = os.path.join(t, "data")
        must([REPLAY, "--csv", os.path.join(t, "hist.csv"), "--nightly", "--work", data,
              "--rules", rules, "-q"], "vigil-replay --nightly (the fixture)")

        # the real vigild scores the live days with the fixture's model
        log = os.path.join(t, "vigild.log")
        url = "ipc://" + os.path.join(t, "v.sock")
        v = subprocess.Popen([VIGILD, "-r", rules, "-d", data, "-l", url, "--admin", "off"],
                             stdout=open(log, "w"), stderr=subprocess.STDOUT)
        procs.append(v)
        wait_for(log, "vigild: ready", v, "vigild did not become ready")
        r = must([SCORE, "-s", url, "--csv", os.path.join(t, "live.csv"), "-q"], "vigil-score")
        replies = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        nlive = len(live) - 1
        if len(replies) != nlive:
            fail(f"vigil-score: {len(replies)} replies for {nlive} rows")
        with_model = sum(1 for x in replies if x.get("model"))
        if with_model == 0:
            fail("vigild scored without a model: the fixture's generation has none")
        v.send_signal(signal.SIGTERM)
        v.wait(30)
        procs.remove(v)

        recs = [x for x in dump(data) if x["event_time_ms"] >= LIVE_FROM_MS]
        arch = {x["txn"]["txn_id"]: x for x in recs}
        if len(arch) != nlive:
            fail(f"the archive holds {len(arch)} scores of the live days, {nlive} were sent")

        # the unchanged file: production's own decisions, row for row
        s, res = exact(data, rules, t, "same")
        if s is not None:
            if s["mode"] != "exact":
                fail(f"summary mode {s['mode']}")
            if s["rows"] != len(arch):
                fail(f"--exact read {s['rows']} rows, the archive holds {len(arch)}")
            if s["compare"]["changed"] != 0:
                fail(f"the unchanged file changes {s['compare']['changed']} decisions: "
                     f"{s['exact']['changes'][:5]}")
            if s["exact"]["rows_inexact"] != 0:
                fail(f"{s['exact']['rows_inexact']} rows inexact: {s['exact']['missing_features']}")
            counts_arch, counts_res = {}, {}
            nmodel = 0
            for x in res:
                a = arch.get(x["txn_id"])
                if a is None:
                    fail(f"{x['txn_id']}: not in the archive")
                    continue
                counts_arch[a["decision"]] = counts_arch.get(a["decision"], 0) + 1
                counts_res[x["decision"]] = counts_res.get(x["decision"], 0) + 1
                if x["decision"] != a["decision"] or abs(x["score"] - a["score"]) > 1e-6:
                    fail(f"{x['txn_id']}: evaluated {x['decision']} {x['score']}, "
                         f"archived {a['decision']} {a['score']}")
                nmodel += "model" in x
            if counts_arch != counts_res:
                fail(f"decision counts: archive {counts_arch}, --exact {counts_res}")
            if nmodel != len(res):
                fail(f"only {nmodel} of {len(res)} rows were scored by the model")
            alerts = counts_arch.get("review", 0) + counts_arch.get("decline", 0)
            print(f"unchanged file: {len(res)} rows, decisions {counts_res}, all scored by the model")
            if alerts == 0:
                fail("no alert in the live days: the comparison proves little")

        # a band change: exactly the archived allows whose score crosses it
        want = {k for k, a in arch.items()
                if a["decision"] == "allow" and a["score"] >= NEW_BAND}
        if not want:
            fail(f"no archived allow scored {NEW_BAND} or more: pick another band")
        s, res = exact(data, edited, t, "band")
        if s is not None:
            got = {c["txn_id"] for c in s["exact"]["changes"]}
            print(f"band {OLD_BAND} -> {NEW_BAND}: {len(got)} of {s['rows']} decisions change")
            if got != want:
                fail(f"band change: {len(got)} changes, {len(want)} expected; extra "
                     f"{sorted(got - want)[:5]}, missing {sorted(want - got)[:5]}")
            if s["compare"]["transitions"]["allow->review"] != len(want):
                fail(f"band change: transitions {s['compare']['transitions']}")

        # the console: exact mode, 0 changes, then the band change's transactions
        tokens = os.path.join(t, "tokens")
        with open(tokens, "w") as f:
            f.write(f"rita rule-editor {TOKEN}\n")
        os.chmod(tokens, 0o600)
        port = free_port()
        clog = os.path.join(t, "console.log")
        c = subprocess.Popen([CONSOLE, "--data", data, "--rules", rules, "--tokens", tokens,
                              "--state", os.path.join(t, "state"), "--listen",
                              f"127.0.0.1:{port}", "--replay", REPLAY, "--poll-ms", "50"],
                             stdout=open(clog, "w"), stderr=subprocess.STDOUT)
        procs.append(c)
        wait_for(clog, "listening on", c, "vigil-console did not start")
        last = max(x["seq"] for x in recs)
        for _ in range(600):
            st, o = http(port, "GET", "/api/status")
            if st == 200 and (o.get("index") or {}).get("last_seq", -1) >= last:
                break
            time.sleep(0.1)
        else:
            fail(f"the console did not index up to seq {last}")
        st, o = http(port, "POST", "/api/rules/backtest", {"text": text, "days": 2})
        if st != 200:
            fail(f"console back-test of the unchanged file: {st} {o}")
        else:
            if o.get("mode") != "exact" or o.get("changed") != 0:
                fail(f"console, unchanged file: mode {o.get('mode')}, {o.get('changed')} "
                     f"changes ({o.get('mode_reason')})")
        st, o = http(port, "POST", "/api/rules/backtest",
                     {"text": open(edited).read(), "days": 2})
        if st != 200:
            fail(f"console back-test of the band change: {st} {o}")
        else:
            from_ms = o["from"]
            lo = time_ms(from_ms)
            hi = time_ms(o["to"])
            win = {k for k, a in arch.items() if lo <= a["event_time_ms"] < hi and k in want}
            got = {x["txn_id"] for x in o["cases"]}
            if any(not x.get("card_id") or not x.get("time") for x in o["cases"]):
                fail(f"console, band change: a case without its card and time (its link): "
                     f"{o['cases'][:2]}")
            if o.get("mode") != "exact" or got != win or not win:
                fail(f"console, band change: mode {o.get('mode')}, {len(got)} cases, "
                     f"{len(win)} expected in [{o['from']}, {o['to']})")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if not failures:
            shutil.rmtree(t, ignore_errors=True)
        else:
            print(f"(kept {t})", file=sys.stderr)


def time_ms(rfc3339):
    from datetime import datetime
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


main()
if failures:
    sys.exit(1)
print("test_replay_exact.py: exact back-tests reproduce vigild's archive")
