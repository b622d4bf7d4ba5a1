#!/usr/bin/env python3
"""Turns bench/run's measurements (key=value lines, plus the SSE arrival files) into the table.

  report.py RESULTS_ENV WORK_DIR
"""

import os
import statistics
import sys

NAMES = {"direct": "direct", "pass": "pass-through", "gw": "mcpgate"}
TARGETS = ["direct", "pass", "gw"]


def load(path):
    values = {}
    for line in open(path):
        key, _, value = line.rstrip("\n").partition("=")
        try:
            values[key] = float(value)
        except ValueError:
            values[key] = value
    return values


def sse_arrivals(path):
    """Per event index, the median arrival (ms after send) over the calls that completed."""
    if not os.path.exists(path):
        return None, 0
    calls = [[float(t) for t in line.split()] for line in open(path)
             if line.strip() and not line.startswith("error")]
    errors = sum(1 for line in open(path) if line.startswith("error"))
    if not calls:
        return None, errors
    events = min(len(c) for c in calls)
    return [statistics.median(c[i] for c in calls) for i in range(events)], errors


def main():
    v, work = load(sys.argv[1]), sys.argv[2]
    tick_us = 1e6 / v["clk_tck"]
    out = []
    p = out.append

    def errors(prefix):
        return int(v[f"{prefix}_bad_status"] + v[f"{prefix}_bad_body"] + v[f"{prefix}_socket_errors"])

    def cpu_per_call(phase, target, process):
        calls = v[f"{phase}_{target}_requests"]
        return v[f"{phase}_{target}_cpu_{process}"] * tick_us / calls if calls else float("nan")

    def loadgen_per_call(phase, target):
        calls = v[f"{phase}_{target}_requests"]
        return v[f"{phase}_{target}_loadgen_s"] * 1e6 / calls if calls else float("nan")

    def others(phase, target):
        """CPU used during the run by processes outside the bench (other builds), % of the machine."""
        known = sum(v[f"{phase}_{target}_cpu_{proc}"] for proc in ("sim", "pass", "gw"))
        known += v[f"{phase}_{target}_loadgen_s"] * v["clk_tck"]
        return max(0.0, 100 * (v[f"{phase}_{target}_busy_ticks"] - known) / v[f"{phase}_{target}_all_ticks"])

    rps = {t: v[f"c_{t}_good"] / (v[f"c_{t}_duration_us"] / 1e6) for t in TARGETS}
    p(f"mcpgate whole-path benchmark: tools/call get_price BTCUSDT, answer checked = {v['expect']} and \"isError\":false")
    p(f"({int(v['connections'])} connections x {int(v['duration'])} s with wrk; {int(v['rate'])} req/s x "
      f"{int(v['duration'])} s with oha --latency-correction; 2 cores shared by load generator, "
      f"simulator and proxy; mcpgate with bench/policy.json, rate limit and --audit on)")
    p("")
    p(f"(a) fixed concurrency, {int(v['connections'])} connections")
    p(f"{'target':<13}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'bad':>6}{'proxy CPU/call':>16}"
      f"{'sim CPU/call':>14}{'wrk CPU/call':>14}{'others':>8}")
    for t in TARGETS:
        proxy = {"direct": "-", "pass": f"{cpu_per_call('c', t, 'pass'):.1f} us",
                 "gw": f"{cpu_per_call('c', t, 'gw'):.1f} us"}[t]
        p(f"{NAMES[t]:<13}{rps[t]:>9.0f}{v[f'c_{t}_p50_us'] / 1000:>9.3f}{v[f'c_{t}_p99_us'] / 1000:>9.3f}"
          f"{errors('c_' + t):>6}{proxy:>16}{cpu_per_call('c', t, 'sim'):>11.1f} us"
          f"{loadgen_per_call('c', t):>11.1f} us{others('c', t):>7.0f}%")
    p(f"  mcpgate/direct {rps['gw'] / rps['direct']:.2f}   pass-through/direct {rps['pass'] / rps['direct']:.2f}   "
      f"mcpgate/pass-through {rps['gw'] / rps['pass']:.2f}   "
      f"CPU/call mcpgate/pass-through {cpu_per_call('c', 'gw', 'gw') / cpu_per_call('c', 'pass', 'pass'):.2f}")
    p("")
    p(f"(b) fixed rate, {int(v['rate'])} req/s (latency from the scheduled send time)")
    p(f"{'target':<13}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'bad':>6}{'proxy CPU/call':>16}"
      f"{'sim CPU/call':>14}{'others':>8}{'bytes/answer':>14}")
    for t in TARGETS:
        bad = int(v[f"r_{t}_non200"] + v[f"r_{t}_errors"])
        proxy = {"direct": "-", "pass": f"{cpu_per_call('r', t, 'pass'):.1f} us",
                 "gw": f"{cpu_per_call('r', t, 'gw'):.1f} us"}[t]
        size = v[f"r_{t}_bytes_per_answer"]
        size_ok = "" if abs(size - v[f"answer_bytes_{t}"]) < 0.01 else f" (!= {int(v[f'answer_bytes_{t}'])})"
        p(f"{NAMES[t]:<13}{v[f'r_{t}_rps']:>9.0f}{v[f'r_{t}_p50_us'] / 1000:>9.3f}{v[f'r_{t}_p99_us'] / 1000:>9.3f}"
          f"{bad:>6}{proxy:>16}{cpu_per_call('r', t, 'sim'):>11.1f} us{others('r', t):>7.0f}%{size:>14.1f}{size_ok}")
    added_p99 = (v["r_gw_p99_us"] - v["r_direct_p99_us"]) / 1000
    added_p50 = (v["r_gw_p50_us"] - v["r_direct_p50_us"]) / 1000
    pass_p99 = (v["r_pass_p99_us"] - v["r_direct_p99_us"]) / 1000
    p(f"  added by mcpgate: p50 {added_p50:+.3f} ms, p99 {added_p99:+.3f} ms   "
      f"(pass-through: p99 {pass_p99:+.3f} ms)")
    p(f"  mcpgate audit during the run: {int(v['r_gw_audit_lines'])} records, "
      f"{int(v['r_gw_audit_allowed_200'])} allowed with upstream 200")
    p("")
    sse = {t: sse_arrivals(os.path.join(work, f"sse_{t}.txt")) for t in TARGETS}
    if all(s[0] for s in sse.values()):
        p("SSE: median arrival of each event after the request was sent (ms; 4 progress events 50 ms apart, then the result)")
        for t in TARGETS:
            arrivals, errs = sse[t]
            p(f"{NAMES[t]:<13}" + "".join(f"{a:>9.2f}" for a in arrivals) + (f"   ({errs} failed)" if errs else ""))
        n = min(len(sse["gw"][0]), len(sse["direct"][0]))
        added = [sse["gw"][0][i] - sse["direct"][0][i] for i in range(n)]
        p(f"  added by mcpgate per event: " + " ".join(f"{a:+.2f}" for a in added)
          + " ms (includes the request's own trip through the gateway)")
        p("")
    sse_added = max(added) if all(s[0] for s in sse.values()) else float("nan")
    idle, after, many = v["rss_gw_idle_kb"], v["rss_gw_after_load_kb"], v["rss_gw_sessions_kb"]
    opened = v["sessions_opened"]
    p(f"RSS mcpgate: idle {idle / 1024:.1f} MB, after the loads {after / 1024:.1f} MB, with "
      f"{int(opened) + 1} sessions {many / 1024:.1f} MB (~{(many - after) * 1024 / max(opened, 1):.0f} B/session; "
      f"{int(v['sessions_failed'])} failed, opened in {v['sessions_seconds']:.1f} s)")
    p(f"RSS pass-through: idle {v['rss_pass_idle_kb'] / 1024:.1f} MB, after the loads {v['rss_pass_after_load_kb'] / 1024:.1f} MB;"
      f" audit log {int(v['audit_lines'])} lines, {v['audit_bytes'] / max(v['audit_lines'], 1):.0f} B/line")
    p("")
    checks = [
        ("CPU/call <= 1.25x pass-through", cpu_per_call("c", "gw", "gw") / cpu_per_call("c", "pass", "pass"), 1.25, "le"),
        ("throughput >= 0.9x pass-through", rps["gw"] / rps["pass"], 0.9, "ge"),
        ("added p99 <= 0.25 ms at fixed rate", added_p99, 0.25, "le"),
        ("RSS idle <= 30 MB", idle / 1024, 30, "le"),
        ("RSS with 10k sessions <= 200 MB", many / 1024, 200, "le"),
        ("SSE event added <= 1 ms (upper bound)", sse_added, 1.0, "le"),
    ]
    bad_answers = sum(errors("c_" + t) + v[f"r_{t}_non200"] + v[f"r_{t}_errors"] for t in TARGETS)
    p("issue 6 targets:")
    for name, value, limit, how in checks:
        ok = value <= limit if how == "le" else value >= limit
        p(f"  {'met ' if ok else 'MISS'}  {name:<38} {value:.2f}")
    p(f"  {'met ' if bad_answers == 0 else 'MISS'}  every answer correct                   {int(bad_answers)} bad")
    p(f"(measured part of the run: {int(v['elapsed_s'])} s)")
    print("\n".join(out))


if __name__ == "__main__":
    main()
