#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/replay/handbook.py - a third data set for docs/DETECTION.md, in vigil's
CSV (docs/csv.md): transactions made by the design of the transaction
simulator of the public "Reproducible Machine Learning for Credit Card Fraud
Detection - Practical Handbook" (Le Borgne et al., chapter 3), written here
from its published description, with the columns it has: card, terminal,
amount, time and the label. Nothing in vigil is tuned to it; like Sparkov, it
tells whether detection generalises beyond vigil-gen's own patterns.

The design: customers and terminals on a 100 x 100 square; a customer pays
at the terminals within radius 5 of home, a Poisson number of times a day
(mean drawn from U(0, 4)), amounts from N(mean, mean / 2) with the mean drawn
from U(5, 100), times of day from N(noon, 20,000 s). Frauds: (1) every
amount over 220; (2) each day 2 terminals are compromised, and every payment
at them in the next 28 days is fraud; (3) each day 3 customers are
compromised, and a third of their payments in the next 14 days are frauds
with the amount multiplied by 5. Labels carry no time: replay with
--label-delay 7d --force-label-delay, the handbook's own delay.

The terminal goes into merchant_id (vigil's one required place for where a
card pays) and terminal_id both; currency EUR; no mcc, country, channel,
location, device or IP.

usage: handbook.py [--customers N] [--terminals N] [--days N] [--radius R]
                   [--start YYYY-MM-DD] [--seed N] [-o FILE]

Exit status (docs/tools.md): 0 success; 1 failure (the CSV cannot be
written); 2 usage (a bad flag or value: one line on stderr).
"""
import argparse
import datetime
import math
import random
import sys


class Parser(argparse.ArgumentParser):
    """--help prints this file's header; a usage error is one line, exit 2."""

    def print_help(self, file=None):
        (file or sys.stdout).write(__doc__)

    def error(self, message):
        sys.stderr.write(f"handbook.py: {message} (see --help)\n")
        sys.exit(2)


def main():
    ap = Parser(add_help=True)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--terminals", type=int, default=10000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--radius", type=float, default=5.0)
    ap.add_argument("--start", default="2018-04-01", help="first day, YYYY-MM-DD (UTC)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", default="-", help='CSV to write ("-": standard output)')
    a = ap.parse_args()
    if a.customers < 1 or a.terminals < 1 or a.days < 1 or a.radius <= 0:
        ap.error("--customers, --terminals, --days and --radius must be positive")
    try:
        start = datetime.datetime.strptime(a.start, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        ap.error(f"--start: {a.start!r} is not YYYY-MM-DD")
    rng = random.Random(a.seed)

    customers = []  # (x, y, mean amount, std amount, mean payments a day)
    for _ in range(a.customers):
        m = rng.uniform(5, 100)
        customers.append((rng.uniform(0, 100), rng.uniform(0, 100), m, m / 2, rng.uniform(0, 4)))
    terminals = [(rng.uniform(0, 100), rng.uniform(0, 100)) for _ in range(a.terminals)]
    # terminals by grid cell, for the radius search
    cell = max(a.radius, 1.0)
    grid = {}
    for t, (x, y) in enumerate(terminals):
        grid.setdefault((int(x // cell), int(y // cell)), []).append(t)

    def near(x, y):
        cx, cy, out = int(x // cell), int(y // cell), []
        for gx in range(cx - 1, cx + 2):
            for gy in range(cy - 1, cy + 2):
                for t in grid.get((gx, gy), ()):
                    tx, ty = terminals[t]
                    if math.hypot(tx - x, ty - y) < a.radius:
                        out.append(t)
        return sorted(out)

    def poisson(lam):
        # Knuth's method: lam <= 4 here
        limit, k, p = math.exp(-lam), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k

    txns = []  # [seconds since start, day, customer, terminal, amount, fraud pattern]
    for c, (x, y, mean, std, rate) in enumerate(customers):
        avail = near(x, y)
        for day in range(a.days):
            for _ in range(poisson(rate)):
                tod = int(rng.gauss(86400 / 2, 20000))
                if not 0 < tod < 86400:
                    continue
                amt = rng.gauss(mean, std)
                if amt < 0:
                    amt = rng.uniform(0, 2 * mean)
                if avail:
                    txns.append([day * 86400 + tod, day, c, rng.choice(avail), round(amt, 2), ""])
    txns.sort(key=lambda r: (r[0], r[2]))

    by_terminal, by_customer = {}, {}
    for i, r in enumerate(txns):
        if r[4] > 220:
            r[5] = "amount_over_220"
        by_terminal.setdefault(r[3], []).append(i)
        by_customer.setdefault(r[2], []).append(i)
    for day in range(a.days):
        for t in rng.sample(range(a.terminals), min(2, a.terminals)):
            for i in by_terminal.get(t, ()):
                if day <= txns[i][1] < day + 28:
                    txns[i][5] = "compromised_terminal"
        for c in rng.sample(range(a.customers), min(3, a.customers)):
            idx = [i for i in by_customer.get(c, ()) if day <= txns[i][1] < day + 14]
            for i in rng.sample(idx, len(idx) // 3):
                txns[i][4] = round(txns[i][4] * 5, 2)
                txns[i][5] = "compromised_card"

    frauds = 0
    try:
        out = sys.stdout if a.output == "-" else open(a.output, "w", encoding="ascii")
        out.write("txn_id,event_time,card_id,merchant_id,terminal_id,amount,currency,label,fraud_pattern\n")
        for n, (sec, _day, c, t, amt, pattern) in enumerate(txns):
            ts = (start + datetime.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%SZ")
            out.write(f"h{n},{ts},c{c},t{t},t{t},{amt:.2f},EUR,{1 if pattern else 0},{pattern}\n")
            frauds += 1 if pattern else 0
        out.flush()
        if out is not sys.stdout:
            out.close()
    except OSError as e:
        sys.stderr.write(f"handbook.py: {a.output}: {e.strerror or e}\n")
        sys.exit(1)
    print(f"handbook.py: {len(txns)} transactions, {frauds} frauds ({100.0 * frauds / max(len(txns), 1):.2f}%), "
          f"{a.customers} cards, {a.terminals} terminals, {a.days} days", file=sys.stderr)


if __name__ == "__main__":
    main()
