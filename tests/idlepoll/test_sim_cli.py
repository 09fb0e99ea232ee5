#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""idlepoll-sim as a command: the --json shape the issue fixes, table and
--help output, error exits naming file and line, and tracegen determinism.

usage: test_sim_cli.py IDLEPOLL_SIM IDLEPOLL_TRACEGEN TRACE_DIR
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

sim, gen, tdir = sys.argv[1:4]
failures = 0


def check(cond, what):
    global failures
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        failures += 1


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


traces = sorted(glob.glob(os.path.join(tdir, '*.trace')))
check(len(traces) >= 6, f'{len(traces)} committed traces')

r = run(sim, '--json', '--halt-cost', '100000', *traces)
check(r.returncode == 0, 'sim --json exits 0')
doc = json.loads(r.stdout)
check(set(doc) == {'halt_cost_ns', 'traces'}, 'top-level keys')
check(doc['halt_cost_ns'] == 100000, 'halt_cost_ns echoes --halt-cost')
check([t['trace'] for t in doc['traces']] == [os.path.basename(p) for p in traces],
      'one entry per trace, named by file name')
want = ['fixed', 'haltpoll', 'kvm', 'smart', 'oracle', 'best-fixed']
for t in doc['traces']:
    check(set(t) == {'trace', 'events', 'results'} and t['events'] > 0,
          f"{t['trace']}: keys and events")
    check([x['policy'] for x in t['results']] == want,
          f"{t['trace']}: all policies plus oracle and best-fixed by default")
    for x in t['results']:
        check(set(x) == {'policy', 'cost_ratio', 'poll_cpu', 'halt_rate',
                         'added_latency_ns'} and
              all(isinstance(x[k], (int, float)) for k in x if k != 'policy'),
              f"{t['trace']}/{x['policy']}: result keys are numbers")
    res = {x['policy']: x for x in t['results']}
    check(abs(res['oracle']['cost_ratio'] - 1.0) < 1e-9, f"{t['trace']}: oracle ratio 1")
    check(min(x['cost_ratio'] for x in t['results']) >= 1.0 - 1e-9,
          f"{t['trace']}: nothing beats the oracle")

r = run(sim, '--json', '--policy', 'smart,kvm', '--param', 'kvm.max_ns=50000',
        '--param', 'halt_cost_ns=20000', traces[0])
doc = json.loads(r.stdout)
check([x['policy'] for x in doc['traces'][0]['results']] == ['smart', 'kvm'],
      '--policy selects and orders')

r = run(sim, traces[0])
check(r.returncode == 0 and r.stdout.splitlines()[0].split()[:3] ==
      ['trace', 'events', 'policy'] and len(r.stdout.splitlines()) == 7,
      'table: a header and one row per policy')
r = run(sim, '--help')
check(r.returncode == 0 and '--halt-cost' in r.stdout and '--json' in r.stdout,
      '--help documents the options')

with tempfile.NamedTemporaryFile('w', suffix='.trace', delete=False) as f:
    f.write('# ok\n1000\n20x0\n')
    bad = f.name
r = run(sim, traces[0], bad)
os.unlink(bad)
check(r.returncode == 1 and f'{bad}:3:' in r.stderr and 'Traceback' not in r.stderr,
      'malformed line: exit 1, error names file and line')
check(r.stdout == '', 'a bad trace fails before any output')
r = run(sim, '--policy', 'nosuch', traces[0])
check(r.returncode == 2 and 'nosuch' in r.stderr, 'unknown policy rejected')
r = run(sim, '--param', 'nosuch=1', traces[0])
check(r.returncode == 2 and 'nosuch' in r.stderr, 'unknown parameter rejected')
r = run(sim, '--param', 'kvm.grow=99999', '--policy', 'kvm', traces[0])
check(r.returncode != 0 and 'grow' in r.stderr, 'out-of-range parameter rejected')

a = run(gen, '--family', 'bursts', '--events', '300', '--seed', '7').stdout
b = run(gen, '--family', 'bursts', '--events', '300', '--seed', '7').stdout
c = run(gen, '--family', 'bursts', '--events', '300', '--seed', '8').stdout
check(a == b and a != c and len(a.splitlines()) == 301, 'tracegen is deterministic per seed')
for p in traces:
    first = open(p).readline().split()
    fam = os.path.basename(p)[:-len('.trace')]
    regen = run(gen, *first[2:]).stdout
    check(first[:2] == ['#', 'idlepoll-tracegen'] and regen == open(p).read(),
          f'{os.path.basename(p)} is exactly what its header command generates')
    check(fam in first, f'{os.path.basename(p)}: family matches file name')

print(f'{failures} failures')
sys.exit(1 if failures else 0)
