#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""idle-pingpong --json has the shape the issue fixes: one run per strategy
and service time, every figure a number. Times are printed, never judged.

usage: test_pingpong_json.py IDLE_PINGPONG
"""
import json
import subprocess
import sys

r = subprocess.run([sys.argv[1], '--json', '--seconds', '0.02',
                    '--halt-cost', '50000'], capture_output=True, text=True)
print(r.stdout)
print(r.stderr, file=sys.stderr)
if r.returncode != 0:
    sys.exit(1)
doc = json.loads(r.stdout)
runs = doc['runs']
ok = set(doc) == {'runs'}
ok &= sorted({(x['strategy'], x['service_us']) for x in runs}) == sorted(
    (s, u) for s in ['block', 'fixed100', 'haltpoll', 'smart'] for u in [0, 1, 20, 50])
for x in runs:
    ok &= set(x) == {'strategy', 'service_us', 'lat_mean_ns', 'lat_p50_ns',
                     'lat_p99_ns', 'poll_cpu'}
    ok &= all(isinstance(x[k], (int, float)) and x[k] >= 0
              for k in x if k != 'strategy')
    ok &= x['lat_p50_ns'] <= x['lat_p99_ns']
    # The waiter cannot poll for longer than the run lasted.
    ok &= x['poll_cpu'] <= 1.0 + 1e-6
    if x['strategy'] == 'block':
        ok &= x['poll_cpu'] == 0
print('shape ok' if ok else 'shape WRONG')
sys.exit(0 if ok else 1)
