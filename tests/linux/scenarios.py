# SPDX-License-Identifier: MIT
"""Checks of the module + agent scenarios, on the console log and the
agent's JSON lines (run_linux.py has the plans). Prints the figures the
docs quote: pv fires against guest pv expiries, backstop re-arms per idle
second, calibration error, fallbacks by reason."""
import re

DEVICE = 'exitless-pvtimer'


def check_ticks(chk, plan):
    """After each load the pvtimer device is the tick device of every CPU;
    after an unload none is (the lapic, or the hpet on the CPU whose
    lapic became the broadcast device, has it back)."""
    ticks = chk.ticks()
    loaded = False
    i = 0
    for s in plan.split(','):
        if s == 'load':
            loaded = True
        elif s == 'unload':
            loaded = False
        elif s == 'ticks':
            devs = ticks[i] if i < len(ticks) else {}
            on = [c for c, d in devs.items() if d == DEVICE]
            if not devs:
                chk.fail(f'ticks step {i}: no /proc/timer_list entries')
            elif loaded and len(on) != len(devs):
                chk.fail(f'ticks step {i}: tick devices {devs}, expected {DEVICE} on all')
            elif not loaded and on:
                chk.fail(f'ticks step {i}: {DEVICE} still ticks on {on} after unload')
            else:
                print(f'ticks step {i}: {devs}')
            i += 1


def pv_delivered(c):
    return c.get('irq_expired', 0) + c.get('irq_early', 0)


def check_fires(chk, agent, marker, stats_event):
    """The agent's fires at a SIGUSR1 snapshot, bracketed by two guest
    counter dumps: the one before @marker (the host signals only after it
    has read that line) and the first one after it (the guest idles 4 s
    after the marker, long enough for the snapshot to be printed).

    Pv deliveries the guest counted before the snapshot cannot outnumber
    the fires, and the fires cannot outnumber the pv interrupts the guest
    took after it (two injections coalesce in the IRR only when a fire
    races a re-arm: a few). No bound depends on how long the console took
    between the dumps, so a slow (sanitized, loaded) host cannot break it."""
    c = chk.counters(before=marker)
    after = chk.counters(after=marker)
    stats = [j for j in agent.json if j.get('event') == stats_event]
    if not stats:
        chk.fail(f'no agent {stats_event} stats')
        return
    if not after:
        chk.fail(f'no guest counter dump after {marker}')
        return
    fires, got = stats[0].get('fires', 0), pv_delivered(c)
    # every pv interrupt the guest took, whatever it found: a fire is one
    # of these unless the LAPIC raised the same vector at the same moment
    # or two fires coalesced in the IRR (a fire racing a re-arm): a few
    pv_after = (pv_delivered(after) + after.get('irq_handback', 0) +
                after.get('irq_spurious', 0))
    print(f'agent fires {fires}; guest pv expiries before it {got}, pv '
          f'interrupts after it {pv_after} ({after.get("irq_spurious", 0)} '
          f'spurious); pv arms {c.get("arm_pv", 0) + c.get("arm_backstop", 0)}')
    if fires == 0 or got == 0:
        chk.fail(f'no pv timer delivered (agent fires {fires}, guest {got})')
    elif got > fires:
        chk.fail(f'guest counted {got} pv expiries before the snapshot of {fires} fires')
    elif fires > pv_after + max(3, fires // 10):
        chk.fail(f'agent fires {fires} > {pv_after} pv interrupts the guest took after them')
    # Spurious: neither the pv slot nor the LAPIC explains the interrupt
    # (a fire of a generation the guest replaced meanwhile). The LAPIC's
    # own expiries (backstops) are not spurious: they were counted so once.
    spurious = after.get('irq_spurious', 0)
    if spurious > max(8, fires // 4):
        chk.fail(f'{spurious} spurious pv interrupts by the dump after {fires} fires')


def report_idle(chk):
    """Backstop re-arms per idle second per CPU during the 'idle' step."""
    try:
        i0 = chk.log.index('XL> idle')
    except ValueError:
        return
    dumps = chk.dumps()
    before = [c for i, c in dumps if i <= i0]
    after = [c for i, c in dumps if i > i0]
    t = [float(m.group(1)) for ln in chk.log
         for m in [re.match(r'XL= idle_(?:begin|end)_s (\S+)', ln)] if m]
    if not before or not after or len(t) < 2:
        return
    secs, ncpu = t[1] - t[0], max(1, after[0].get('cpus_on_pvtimer', 1))
    d = {k: after[0].get(k, 0) - before[-1].get(k, 0)
         for k in ('hw_backstop', 'lapic_writes', 'irq_expired', 'idle_halts')}
    print(f'idle {secs:.2f} s: backstop re-arms {d["hw_backstop"] / secs / ncpu:.1f}'
          f'/s/CPU, LAPIC programmings {d["lapic_writes"] / secs / ncpu:.1f}/s/CPU, '
          f'pv expiries {d["irq_expired"] / secs / ncpu:.1f}/s/CPU, '
          f'halts {d["idle_halts"] / secs / ncpu:.1f}/s/CPU')


def check(scenario, chk, agent, plan):
    check_ticks(chk, plan)
    if 'XL= load ok' not in chk.log:
        chk.fail('module did not load')
    cal = [j for j in agent.json if j.get('event') == 'calibrated']
    if not cal:
        chk.fail('agent never calibrated: ' + ' | '.join(agent.lines[-5:]))
        return
    print(f'TSC calibration: error bound {cal[0]["calib_error_tsc"]} cycles '
          f'at {cal[0]["tsc_khz"]} kHz, {cal[0]["calib_samples"]} samples')
    if any(j.get('inject_errors', 0) for j in agent.json):
        chk.fail('agent injection errors')
    report_idle(chk)
    last = chk.counters()
    print('fallbacks by reason:', {k: v for k, v in last.items()
                                   if 'fallback' in k and v})
    if scenario == 'main':
        check_fires(chk, agent, 'XL@ snap', 'stats')
        if not [j for j in agent.json if j.get('event') == 'exit']:
            chk.fail('agent printed no exit stats after SIGTERM')
        # after the clean stop every arm falls back as "disabled"
        if last.get('arm_fallback_disabled', 0) == 0:
            chk.fail('no disabled fallbacks after the clean agent stop')
    if scenario == 'kill':
        check_fires(chk, agent, 'XL@ kill', 'stats')
        # a dead agent breaks its promise: arms and backstops see STALE
        if last.get('hw_fallback_stale', 0) + last.get('arm_fallback_stale', 0) == 0:
            chk.fail('no stale fallbacks after SIGKILL')
