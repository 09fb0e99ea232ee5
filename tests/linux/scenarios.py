# SPDX-License-Identifier: MIT
"""Checks of the module + agent scenarios, on the console log and the
agent's JSON lines (see run_linux.py for the plans)."""
import re

DEVICE = 'exitless-pvtimer'


def check_ticks(chk, plan):
    """After each load the pvtimer device is the tick device of every CPU;
    after an unload none is; the lapic (or hpet) has it back."""
    steps = plan.split(',')
    ticks = chk.ticks()
    loaded = False
    i = 0
    for s in steps:
        if s == 'load':
            loaded = True
        elif s == 'unload':
            loaded = False
        elif s == 'ticks':
            if i >= len(ticks) or not ticks[i]:
                chk.fail(f'ticks step {i}: no /proc/timer_list entries')
            else:
                devs = ticks[i]
                on = [c for c, d in devs.items() if d == DEVICE]
                if loaded and len(on) != len(devs):
                    chk.fail(f'ticks step {i}: tick devices {devs}, expected {DEVICE} on all')
                if not loaded and on:
                    chk.fail(f'ticks step {i}: {DEVICE} still ticks on {on} after unload')
            i += 1


def check(scenario, chk, agent, plan):
    check_ticks(chk, plan)
    if 'XL= load ok' not in chk.log:
        chk.fail('module did not load')
    cal = [j for j in agent.json if j.get('event') == 'calibrated']
    if not cal:
        chk.fail('agent never calibrated: ' + ' | '.join(agent.lines[-5:]))
        return
    c = chk.counters()
    if c.get('arm_pv', 0) + c.get('arm_backstop', 0) == 0:
        chk.fail(f'no pv arms: {c}')
    stats = [j for j in agent.json if j.get('event') in ('stats', 'exit')]
    if not stats or stats[-1].get('fires', 0) == 0:
        chk.fail(f'agent fired nothing: {stats[-1:] }')
    if any(j.get('inject_errors', 0) for j in stats):
        chk.fail('agent injection errors')
    if scenario == 'main':
        ex = [j for j in agent.json if j.get('event') == 'exit']
        if not ex:
            chk.fail('agent printed no exit stats after SIGTERM')
        # after the clean stop every arm falls back as "disabled"
        if c.get('arm_fallback_disabled', 0) == 0:
            chk.fail('no disabled fallbacks after the clean agent stop')
    if scenario == 'kill':
        # the backstop found the dead host (stale promise) or the arms did
        if c.get('hw_fallback_stale', 0) + c.get('arm_fallback_stale', 0) == 0:
            chk.fail('no stale fallbacks after SIGKILL')
