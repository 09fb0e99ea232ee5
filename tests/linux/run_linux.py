#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Linux suite: a stock Debian kernel under QEMU TCG, the exitless module
and exitless-qemu-agent as ivshmem server. One scenario per invocation:

  bare    no module, no agent: the harness itself (workload on the LAPIC)
  main    module + agent: tick device on every CPU, workload, SIGSTOP 2 s,
          CPU offline/online, unload/reload, clean agent stop, workload
  kill    module + agent: SIGKILL the agent while the guest idles

Exit 77 only when QEMU or the kernel (headers or image) is missing."""
import argparse
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boot  # noqa: E402
import guest_image  # noqa: E402

BAD = re.compile(r'WARNING:|Oops|BUG:|Call Trace|rcu.*stall|RCU.*stall|'
                 r'Kernel panic|soft lockup|hard LOCKUP|general protection')
DEVICE = 'exitless-pvtimer'

PLANS = {
    'bare': 'ticks,work',
    'main': 'load,ticks,work,cyclictest,counters,idle,counters,snap,counters,stop2,work,'
            'offline,ticks,work,unload,ticks,work,load,ticks,work,term,work,'
            'counters',
    'kill': 'load,ticks,work,idle,counters,kill,work,counters',
}


class Checker:
    def __init__(self, log):
        self.log = log
        self.errors = []

    def fail(self, msg):
        self.errors.append(msg)

    def lines(self, prefix):
        return [ln[len(prefix):] for ln in self.log if ln.startswith(prefix)]

    def common(self, rc, plan):
        for ln in self.log:
            if BAD.search(ln):
                self.fail(f'console: {ln}')
        for ln in self.lines('XL! '):
            self.fail(f'guest: {ln}')
        if 'XL> poweroff' not in self.log:
            self.fail('guest did not reach poweroff')
        if rc != 0:
            self.fail(f'qemu exit status {rc}')
        works = plan.split(',').count('work')
        ok = self.log.count('XL= work ok')
        if ok != works:
            self.fail(f'{ok} of {works} workload runs completed')
        for ln in self.log:
            if ln.startswith('XLW total') and 'fails=0' not in ln:
                self.fail(f'workload: {ln}')

    def ticks(self):
        """Tick devices per 'ticks' step, in order: [{cpu: dev}, ...]."""
        out, cur = [], None
        for ln in self.log:
            if ln == 'XL> ticks':
                cur = {}
                out.append(cur)
            m = re.match(r'XL= tick cpu=(\d+) dev=(\S+)', ln)
            if m and cur is not None:
                cur[int(m.group(1))] = m.group(2)
        return out

    def dumps(self):
        """Every counter dump, in order, as (index of the log line after
        it, dict)."""
        out, cur = [], None
        for i, ln in enumerate(self.log):
            if ln.startswith('XL= counter '):
                if cur is None:
                    cur = {}
                    out.append((i, cur))
                k, _, v = ln[len('XL= counter '):].partition(' ')
                if v.strip().isdigit():
                    cur[k] = int(v)
            elif not ln.startswith('XL= interrupts'):
                cur = None
        return out

    def counters(self, before=None, after=None):
        """As a dict: the last counter dump (before the first log line
        equal to @before, if given), or with @after the first dump after
        the first line equal to it ({} if there is none)."""
        if after is not None:
            if after not in self.log:
                return {}
            start = self.log.index(after)
            found = [c for i, c in self.dumps() if i > start]
            return found[0] if found else {}
        end = self.log.index(before) if before in self.log else len(self.log)
        found = [c for i, c in self.dumps() if i <= end]
        return found[-1] if found else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('scenario', choices=sorted(PLANS))
    ap.add_argument('--build', required=True, help='build dir for caches')
    ap.add_argument('--src', required=True, help='source root')
    ap.add_argument('--workload', required=True)
    ap.add_argument('--agent')
    ap.add_argument('--count', type=int, default=300)
    ap.add_argument('--plan', help='override the scenario plan (debugging)')
    args = ap.parse_args()

    if not shutil.which('qemu-system-x86_64'):
        guest_image.skip('qemu-system-x86_64 not installed')
    abi, headers = guest_image.kernel_abi()
    cache = os.path.join(args.build, 'linux-cache')
    kernel = guest_image.vmlinuz(cache, abi)
    work = os.path.join(args.build, 'linux-' + args.scenario)
    os.makedirs(work, exist_ok=True)
    module = None
    if args.scenario != 'bare':
        module = guest_image.build_module(args.src, headers,
                                          os.path.join(work, 'module'))
    initrd = guest_image.initramfs(work, os.path.join(args.src, 'tests/linux/init.sh'),
                                   args.workload, module)
    plan = args.plan or PLANS[args.scenario]
    log, agent, rc = boot.boot(kernel, initrd, plan, work,
                               agent_exe=args.agent if module else None,
                               count=args.count)
    with open(os.path.join(work, 'console.log'), 'w') as f:
        f.write('\n'.join(log) + '\n')
    chk = Checker(log)
    chk.common(rc, plan)
    if args.scenario != 'bare':
        import scenarios  # noqa: E402 (module + agent checks)
        scenarios.check(args.scenario, chk, agent, plan)
    for ln in log:
        if ln.startswith(('XLW', 'XL= ', 'HOST:')):
            print(ln)
    if agent:
        for ln in agent.lines:
            print('agent:', ln)
    print(f'console log: {work}/console.log')
    if chk.errors:
        for e in chk.errors:
            print('FAIL:', e)
        return 1
    print(f'PASS {args.scenario}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
