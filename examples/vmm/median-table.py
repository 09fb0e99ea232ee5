#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run exitless-vmm N times with --json and print the medians as markdown.

usage: median-table.py [--runs N] [--save DIR] VMM [VMM ARGS...]
       median-table.py --from DIR   (the tables of runs saved with --save)

Pingpong (--workload pingpong): one row per service time and configuration:
round trip p50/p99, guest and host poll CPU (share of one CPU over the run,
and ns per round trip), halt exits and successful host polls per round trip,
each the median over the runs. A row with an error in any run shows it.
Timer workload: lateness p50/p99 and host poll time per configuration,
then exit-causing guest operations per timer by cause (arm, cancel, EOI,
halt; total with its range over the runs), EOIs PV EOI skipped, waits
polled to the deadline, lateness, and lost/early timers summed.
Every run is a fresh VM; the runs follow one another."""
import json
import os
import statistics
import subprocess
import sys


def runs_of(argv):
    n, save = 3, None
    while argv and argv[0].startswith("--"):
        if argv[0] == "--runs":
            n = int(argv[1])
        elif argv[0] == "--save":
            save = argv[1]
        elif argv[0] == "--from":
            # print the tables of runs saved earlier with --save
            d = argv[1]
            files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
            return [d], [json.load(open(os.path.join(d, f))) for f in files]
        else:
            sys.exit(f"unknown option {argv[0]}")
        argv = argv[2:]
    if not argv:
        sys.exit(__doc__)
    out = []
    for i in range(n):
        p = subprocess.run(argv + ["--json"], capture_output=True, text=True)
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            sys.exit(f"run {i + 1}: exit status {p.returncode}")
        r = json.loads(p.stdout)
        out.append(r)
        if save:
            os.makedirs(save, exist_ok=True)
            with open(os.path.join(save, f"run{i + 1}.json"), "w") as f:
                f.write(p.stdout)
    return argv, out


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def pingpong(rs):
    rows = {}
    for r in rs:
        for x in r["pingpong"]:
            rows.setdefault((x["service_us"], x["config"]), []).append(x)
    print("| service | config | RTT p50 µs | RTT p99 µs | guest poll CPU | "
          "guest poll µs/RTT | host poll CPU | host poll µs/RTT | "
          "halt exits/RTT | ok host polls/RTT |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (svc, cfg), xs in rows.items():
        errs = [x["error"] for x in xs if "error" in x]
        if errs:
            print(f"| {svc} | {cfg} | error: {errs[0]} |||||||")
            continue
        m = {k: med([x[k] for x in xs]) for k in (
            "rtt_p50_ns", "rtt_p99_ns", "guest_poll_cpu",
            "guest_poll_ns_per_rtt", "host_poll_cpu", "host_poll_ns_per_rtt",
            "halt_exits_per_rtt", "halt_successful_poll_per_rtt")}
        print(f"| {svc} | {cfg} | {m['rtt_p50_ns'] / 1e3:.1f} | "
              f"{m['rtt_p99_ns'] / 1e3:.0f} | {m['guest_poll_cpu']:.3f} | "
              f"{m['guest_poll_ns_per_rtt'] / 1e3:.1f} | "
              f"{m['host_poll_cpu']:.4f} | "
              f"{m['host_poll_ns_per_rtt'] / 1e3:.2f} | "
              f"{m['halt_exits_per_rtt']:.2f} | "
              f"{m['halt_successful_poll_per_rtt']:.2f} |")


def timers(rs):
    rows = {}
    for r in rs:
        for name, k in r["configs"].items():
            rows.setdefault(name, []).append(k)
    print("| configuration | lateness p50 µs | p99 µs | host poll µs "
          "(ok+fail) | halt_exits | ok host polls | ceiling changes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, ks in rows.items():
        def m(key, div=1.0):
            return med([k.get(key, 0) / div for k in ks])
        hp = med([(k.get("kvm_halt_poll_success_ns", 0) +
                   k.get("kvm_halt_poll_fail_ns", 0)) / 1e3 for k in ks])
        print(f"| {name} | {m('late_p50_ns', 1e3):.1f} | "
              f"{m('late_p99_ns', 1e3):.0f} | {hp:.0f} | "
              f"{m('kvm_halt_exits'):.0f} | "
              f"{m('kvm_halt_successful_poll'):.0f} | "
              f"{m('halt_poll_changes'):.0f} |")


def exit_ops(rs):
    """Exit-causing guest operations per timer by cause, medians; lost and
    early summed over the runs (they must be 0)."""
    rows = {}
    for r in rs:
        for name, k in r["configs"].items():
            rows.setdefault(name, []).append(k)
    print("| configuration | arm | cancel | EOI | halt | total | "
          "EOIs skipped (PV EOI) | waits polled to deadline | "
          "lateness p50 µs | p99 µs | lost | early | arms by fallback "
          "reason |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, ks in rows.items():
        if "exit_ops_per_timer" not in ks[0]:
            continue
        ops = {c: med([k["exit_ops_per_timer"][c] for k in ks])
               for c in ("arm", "cancel", "eoi", "halt", "total")}
        lo, hi = (min(k["exit_ops_per_timer"]["total"] for k in ks),
                  max(k["exit_ops_per_timer"]["total"] for k in ks))
        print(f"| {name} | {ops['arm']:.3f} | {ops['cancel']:.3f} | "
              f"{ops['eoi']:.3f} | {ops['halt']:.3f} | "
              f"{ops['total']:.3f} ({lo:.3f}–{hi:.3f}) | "
              f"{med([k['eoi_skipped'] for k in ks]):.0f} | "
              f"{med([k['deadline_polls'] for k in ks]):.0f} | "
              f"{med([k['late_p50_ns'] / 1e3 for k in ks]):.1f} | "
              f"{med([k['late_p99_ns'] / 1e3 for k in ks]):.0f} | "
              f"{sum(k['lost'] for k in ks)} | {sum(k['early'] for k in ks)} | "
              f"{reasons(ks)} |")


def reasons(ks):
    """Why timers went to the LAPIC (medians; plain: every timer)."""
    if all(k["pv_arms"] == 0 for k in ks):
        return "all (LAPIC only)"
    names = ks[0]["fallback_reasons"].keys()
    m = {n: med([k["fallback_reasons"][n] for k in ks]) for n in names}
    return ", ".join(f"{n} {v:.0f}" for n, v in m.items() if v) or "none"


def main():
    argv, rs = runs_of(sys.argv[1:])
    print(f"`{' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv))} --json`,"
          f" medians of {len(rs)} runs")
    print()
    if "pingpong" in rs[0]:
        pingpong(rs)
    else:
        timers(rs)
        print()
        exit_ops(rs)


main()
