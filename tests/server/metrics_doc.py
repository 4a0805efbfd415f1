#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/server/metrics_doc.py - vigild's /metrics against docs/vigild.md,
"METRICS", on a real vigild (with [store] ship_command, so that the
shipping metrics are shown; [cluster] needs NATS, so its rows are only
checked to be absent):

* every metric family the scrape has is a row of the table, with the
  table's type, and every row (but the cluster's) is in the scrape; its
  samples' labels are among those the row lists;
* the Prometheus text format 0.0.4: HELP and TYPE once per family, before
  its samples, each family's samples together, sample names of the family
  (a histogram's _bucket, _sum, _count), label values escaped (only \\\\,
  \\" and \\n), every value a number, no series twice;
* no counter series goes down between two scrapes with traffic between
  them (POST /v1/score: scored, refused, dry run, retried);
* vigil_http_connections_closed_total counts a connection over
  admin_max_connections_per_address, as its row says.

Usage: metrics_doc.py (VIGIL_BUILD_ROOT and VIGIL_SOURCE_ROOT set by meson).
"""
import os
import re
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vigil_http import S, fail, free_port, request, start, stop  # noqa: E402

DOC = os.path.join(S, "docs", "vigild.md")
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(r"^(%s)(\{(.*)\})? (\S+)$" % NAME)
LABEL = re.compile(r'(%s)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)' % r"[a-zA-Z_][a-zA-Z0-9_]*")


def doc_table():
    """{metric: (type, {label names})} of the METRICS table."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    sect = text.split("\n## METRICS\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in sect.splitlines():
        if not line.startswith("| `vigil_"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        labels = set(re.findall(r"`([a-z_]+)`", cells[2]))
        for name in re.findall(r"`(vigil_[a-z_]+)`", cells[0]):
            rows[name] = (cells[1], labels)
    if len(rows) < 50:
        fail("%d rows read from the METRICS table of %s" % (len(rows), DOC))
    return rows


def scrape(port, log):
    """{family: {"help": n, "type": t, "series": {(name, labels): value}}}, the
    exposition checked line by line."""
    st, text = request(port, "GET", "/metrics")
    if st != 200 or not text.endswith("\n"):
        fail("/metrics: %d" % st, log)
    fams, order, cur = {}, [], None
    for n, line in enumerate(text.splitlines(), 1):
        where = "/metrics line %d: %r" % (n, line)
        m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % NAME, line)
        if m:
            f = fams.setdefault(m.group(2), {"help": 0, "type": None, "series": {}})
            if f["series"] or (order and order[-1] != m.group(2) and m.group(2) in order):
                fail("%s: HELP or TYPE after the family's samples" % where, log)
            if m.group(1) == "HELP":
                f["help"] += 1
            elif f["type"] is not None:
                fail("%s: a second TYPE" % where, log)
            else:
                f["type"] = m.group(3)
            if f["help"] > 1:
                fail("%s: a second HELP" % where, log)
            if not order or order[-1] != m.group(2):
                order.append(m.group(2))
            cur = m.group(2)
            continue
        if line.startswith("#") or line == "":
            fail("%s: not a sample, HELP or TYPE" % where, log)
        m = SAMPLE.match(line)
        if m is None:
            fail("%s: not a sample" % where, log)
        name, labels = m.group(1), m.group(3) or ""
        f = fams.get(cur)
        suffixes = ("", "_bucket", "_sum", "_count") if f and f["type"] == "histogram" else ("",)
        if f is None or name not in [cur + s for s in suffixes]:
            fail("%s: a sample of no family declared above it (%s)" % (where, cur), log)
        pairs, pos = [], 0
        while pos < len(labels):
            lm = LABEL.match(labels, pos)
            if lm is None:
                fail("%s: labels do not parse (unescaped quote, backslash or newline?)"
                     % where, log)
            pairs.append((lm.group(1), lm.group(2)))
            pos = lm.end()
        try:
            value = float(m.group(4))
        except ValueError:
            fail("%s: the value is not a number" % where, log)
        key = (name, tuple(sorted(pairs)))
        if key in f["series"]:
            fail("%s: the series is there twice" % where, log)
        f["series"][key] = value
    for name, f in fams.items():
        if f["help"] != 1 or f["type"] is None:
            fail("family %s: %d HELP, TYPE %s" % (name, f["help"], f["type"]), log)
    return fams


def main():
    d = tempfile.mkdtemp(prefix="vigil-metrics_doc-")
    log = os.path.join(d, "vigild.log")
    proc = None
    try:
        rows = doc_table()
        aport = free_port()
        proc = start(d, "[server]\nadmin_max_connections_per_address = 2\n"
                     "[store]\nship_command = true %p\n", aport)

        txn = ('{"txn_id": "md-%d", "card_id": "card-md", "merchant_id": "m-1", '
               '"amount": %s, "currency": "EUR", "event_time": "2025-11-21T04:40:00Z"}')
        first = scrape(aport, log)
        for i, (body, want) in enumerate((
                (txn % (1, "1500.00"), 200),                       # scored, a rule fires
                (txn % (1, "1500.00"), 200),                       # retried: duplicate
                ('{"txn": %s, "dry_run": true}' % (txn % (2, "5.00")), 200),
                ((txn % (3, "5.00")).replace("EUR", "EUX"), 400),  # INVALID
                ("{not json", 400))):                              # MALFORMED
            st, data = request(aport, "POST", "/v1/score", body)
            if st != want:
                fail("POST /v1/score #%d: %d %s" % (i, st, data), log)
        second = scrape(aport, log)

        for fams in (first, second):
            for name, f in fams.items():
                if name not in rows:
                    fail("%s is on /metrics but not in the METRICS table of docs/vigild.md"
                         % name, log)
                if f["type"] != rows[name][0]:
                    fail("%s: TYPE %s on /metrics, %s in docs/vigild.md"
                         % (name, f["type"], rows[name][0]), log)
                for (_, pairs) in f["series"]:
                    extra = {k for k, _ in pairs} - rows[name][1]
                    if extra:
                        fail("%s: label(s) %s not in docs/vigild.md (%s)"
                             % (name, sorted(extra), sorted(rows[name][1])), log)
            for name in rows:
                if name not in fams and not name.startswith("vigil_cluster_"):
                    fail("%s is in the METRICS table of docs/vigild.md but not on /metrics"
                         % name, log)
            for name in fams:
                if name.startswith("vigil_cluster_"):
                    fail("%s is on /metrics without [cluster]" % name, log)

        # a connection over admin_max_connections_per_address is closed by
        # vigild and counted as its METRICS row says
        socks = [socket.create_connection(("127.0.0.1", aport), timeout=30) for _ in range(3)]
        if socks[2].recv(1) != b"":
            fail("a third connection from 127.0.0.1 was not closed at once", log)
        for s in socks:
            s.close()
        third = scrape(aport, log)["vigil_http_connections_closed_total"]["series"]
        if third.get(("vigil_http_connections_closed_total", ())) != 1:
            fail("vigil_http_connections_closed_total after a connection over "
                 "admin_max_connections_per_address: %s" % third, log)

        for name, f in first.items():
            if f["type"] not in ("counter", "histogram"):
                continue
            for key, v in f["series"].items():
                w = second[name]["series"].get(key)
                if w is not None and w < v:
                    fail("counter %s%s went down: %g, then %g" % (key[0], dict(key[1]), v, w),
                         log)
        for key, want in ((("vigil_requests_total", (("status", "OK"), ("type", "score"))), 3),
                          (("vigil_dry_runs_total", ()), 1),
                          (("vigil_duplicates_total", ()), 1)):
            got = second[key[0]]["series"].get(key)
            if got != want:
                fail("%s%s: %s after the requests, expected %d" % (key[0], dict(key[1]), got,
                                                                   want), log)
        stop(proc, log)
        proc = None
        print("metrics_doc: ok")
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
