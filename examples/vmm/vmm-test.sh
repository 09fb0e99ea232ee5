#!/bin/sh
# SPDX-License-Identifier: MIT
# Run exitless-vmm briefly, with one vCPU and with two, and check its JSON
# for consistency: both configurations ran, every timer fired and was
# recorded (none lost), the counters agree with each other. No timing
# assertions. Then the timer workload once per host halt-poll mode
# (--halt-poll kvm,smart), and the pingpong workload: every configuration
# for every service time, with figures or an error, CPU shares that are
# zero where nothing can poll, and the SVG plot with one curve per row
# that has figures. Then the fatal-exception path: with two vCPUs, each in turn
# calls through NULL in ring 3; the VMM must report that vCPU's #PF at
# rip 0 and stop the other cleanly: exit 1, no sanitizer report. Exit 77
# (skip) when the VMM reports /dev/kvm absent or unusable.
# usage: vmm-test.sh PATH/TO/exitless-vmm
set -u
vmm=$1
out=$(mktemp)
err=$(mktemp)
svg=$(mktemp)
trap 'rm -f "$out" "$err" "$svg" "$svg.prom"' EXIT
timers=200
# "1b": one vCPU with the ABI's liveness backstop on (B = 500 us, deadlines
# 1-3 ms, so the backstop fires and is re-armed within most timers)
for run in 1 2 1b; do
	vcpus=${run%b}
	extra=""
	[ "$run" = 1b ] && extra="--backstop-us 500 --min-us 1000 --max-us 3000"
	# shellcheck disable=SC2086
	"$vmm" --timers $timers --vcpus $vcpus --json --timeout 240 $extra \
		>"$out" 2>"$err"
	rc=$?
	cat "$err" >&2
	[ $rc -eq 77 ] && { echo "SKIP: no usable /dev/kvm"; exit 77; }
	[ $rc -eq 0 ] || { echo "FAIL: exitless-vmm --vcpus $vcpus exited $rc"; cat "$out"; exit 1; }
	cat "$out"
	python3 - "$out" "$timers" "$vcpus" "$run" <<'PY' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
per, vcpus, backstop = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].endswith("b")
n = per * vcpus
fail = []
def check(cond, what):
    if not cond:
        fail.append(what)
check(r.get("vcpus") == vcpus and r.get("timers") == per, "run parameters echoed")
c = r.get("configs", {})
check(set(c) == {"plain", "exitless"}, "both configurations ran")
for name, k in c.items():
    check(k["timers"] == n, f"{name}: {n} timers recorded (got {k['timers']})")
    check(k["lost"] == 0, f"{name}: no lost timers")
    check(k["pv_fired"] + k["lapic_fired"] == k["timers"],
          f"{name}: each timer ended by exactly one timer interrupt")
    check(k["early"] == 0, f"{name}: no timer interrupt before its deadline")
    # every timer ends on exactly one interrupt that the guest EOIs (by
    # the MSR, or by PV EOI's skip); a pvtimer fire of a cancelled
    # generation may add a spurious one
    check(k["wrmsr_eoi"] + k["eoi_skipped"] >= k["timers"],
          f"{name}: an EOI per timer")
    ops = k["exit_ops_per_timer"]
    check(abs(ops["total"] * k["timers"] - (k["wrmsr_tsc_deadline"] +
              k["wrmsr_eoi"] + k["hlt"])) < 0.01 * k["timers"] + 1,
          f"{name}: per-timer ops add up to the guest's counters")
    check(ops["cancel"] * k["timers"] <= k["wrmsr_tsc_deadline"] + 0.5,
          f"{name}: cancels are TSC_DEADLINE writes")
    check(k["deadline_polls"] <= k["timers"], f"{name}: deadline polls <= timers")
    check(k["late_p50_ns"] <= k["late_p99_ns"] <= k["late_max_ns"],
          f"{name}: percentiles ordered")
    if "kvm_irq_injections" in k:
        check(k["kvm_irq_injections"] >= k["timers"],
              f"{name}: KVM injected at least one interrupt per timer")
p, e = c.get("plain", {}), c.get("exitless", {})
if p:
    check(p["wrmsr_tsc_deadline"] == n, "plain: one TSC_DEADLINE write per timer")
    check(p["fallbacks"] == n and p["pv_arms"] == 0, "plain: LAPIC timer only")
    check(p["wrmsr_eoi"] + p["eoi_skipped"] == n,
          "plain: exactly one interrupt per timer")
    # plain is the bare LAPIC baseline: no PV EOI, no deadline polling
    check(p["pv_eoi_vcpus"] == 0 and p["eoi_skipped"] == 0,
          "plain: PV EOI off")
    check(all(m in (0, 2**64 - 1) for m in p["pv_eoi_msr"]),
          "plain: MSR_KVM_PV_EOI_EN off as the host reads it")
    check(p["deadline_polls"] == 0, "plain: never polls")
if e:
    check(e["pv_arms"] + e["fallbacks"] >= n, "exitless: every timer armed")
    check(e["pv_fired"] <= e["pv_arms"], "exitless: pv-fired timers were pv-armed")
    check(e["lapic_fired"] <= e["fallbacks"] + e["backstop_fired"],
          "exitless: LAPIC-fired timers fell back first (or the backstop "
          "delivered them)")
    check(sum(e["fallback_reasons"].values()) == e["fallbacks"],
          "exitless: every fallback has a reason")
    if backstop:
        check(e["backstop_arms"] > 0, "exitless: the backstop was programmed")
        check(e["backstop_irqs"] > 0, "exitless: backstop interrupts handled")
    else:
        check(e["backstop_arms"] == 0, "exitless: no backstop unless asked")
    check(r.get("pv_eoi") in ("offered", "unsupported"),
          f"PV EOI offered where KVM supports it: {r.get('pv_eoi')}")
    if r.get("pv_eoi") == "offered":
        # the guest found it in KVM's CPUID, enabled it on each vCPU, and
        # the host read the MSR back pointing at the vCPU's word
        check(e["pv_eoi_vcpus"] == vcpus, "exitless: PV EOI on in every vCPU")
        check(e["pv_eoi_msr_ok"] == vcpus,
              f"exitless: MSR_KVM_PV_EOI_EN as set: {e['pv_eoi_msr']}")
    a = r.get("agent", {})
    check(a.get("inject_errors", 1) == 0, "agent: no injection errors")
    check(a.get("fires", 0) >= e["pv_fired"],
          "agent: fired every timer the guest saw fire")
for f in fail:
    print("FAIL:", f)
print("vmm-test:", "FAIL" if fail else "ok",
      f"({per} timers per configuration per vCPU, {vcpus} vCPU(s)"
      f"{', backstop' if backstop else ''})")
sys.exit(1 if fail else 0)
PY
done
# Short deadlines (10-100 us, all within H = 100 us): the exitless guest
# must plan to poll every wait to its deadline (deadline_polls == timers,
# a count fixed by the deadlines, not by timing), and PV EOI must be on.
# Then the same with both turned off: no deadline polls, KVM's CPUID
# withholds PV EOI, so the guest never enables it (the VMM still asks for
# it in the mailbox: the CPUID bit alone decides) and skips no EOI.
# Where guest ring 0 runs natively (plain's interrupt stubs are not
# emulated: insn_emulation < 1 per timer), KVM's PV EOI flag reaches the
# stubs and some EOIs must be skipped; on a host that emulates ring 0 the
# flag is cleared at the exit before the stub runs, and none can be.
for mode in on off; do
	extra=""
	[ $mode = off ] && extra="--no-pv-eoi --no-deadline-poll"
	# shellcheck disable=SC2086
	"$vmm" --timers $timers --min-us 10 --max-us 100 --json --timeout 240 \
		$extra >"$out" 2>"$err"
	rc=$?
	cat "$err" >&2
	[ $rc -eq 0 ] || { echo "FAIL: --min-us 10 --max-us 100 ($mode) exited $rc"; cat "$out"; exit 1; }
	python3 - "$out" "$timers" "$mode" <<'PY' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
n, on = int(sys.argv[2]), sys.argv[3] == "on"
c = r.get("configs", {})
p, e = c.get("plain", {}), c.get("exitless", {})
fail = []
def check(cond, what):
    if not cond:
        fail.append(what)
for name, k in c.items():
    check(k["timers"] == n and k["lost"] == 0 and k["early"] == 0,
          f"{name}: {n} timers, none lost or early")
    check(k["wrmsr_eoi"] + k["eoi_skipped"] >= k["timers"],
          f"{name}: an EOI (written or skipped) per timer")
native = p.get("kvm_insn_emulation", 0) < p.get("timers", 1)
if on:
    check(r.get("deadline_poll") is True, "deadline polling on")
    check(e["deadline_polls"] == n,
          f"exitless: every wait (deadline <= H) polled to its deadline: "
          f"{e['deadline_polls']} of {n}")
    if r.get("pv_eoi") == "offered":
        check(e["pv_eoi_vcpus"] == 1 and e["pv_eoi_msr_ok"] == 1,
              "exitless: PV EOI on, MSR as set")
        if native:
            check(e["eoi_skipped"] > 0, "exitless: PV EOI skipped EOIs")
        else:
            print(f"vmm-test: note: ring 0 emulated here "
                  f"({p['kvm_insn_emulation'] / n:.0f} emulated instructions "
                  f"per plain timer): PV EOI on, {e['eoi_skipped']} EOIs "
                  f"skipped of {e['eoi_skipped'] + e['wrmsr_eoi']}")
else:
    check(r.get("deadline_poll") is False and e["deadline_polls"] == 0,
          "exitless: no deadline polls with --no-deadline-poll")
    check(r.get("pv_eoi") in ("withheld", "unsupported"), "PV EOI withheld")
    check(e["pv_eoi_vcpus"] == 0 and e["eoi_skipped"] == 0,
          "exitless: the guest saw no PV EOI in CPUID, skipped no EOI")
    check(all(m in (0, 2**64 - 1) for m in e["pv_eoi_msr"]),
          "exitless: MSR_KVM_PV_EOI_EN off as the host reads it")
    check(e["wrmsr_eoi"] >= n, "exitless: every EOI written")
for f in fail:
    print("FAIL:", f)
print("vmm-test:", "FAIL" if fail else "ok",
      f"(10-100 us deadlines, PV EOI and deadline polling {sys.argv[3]})")
sys.exit(1 if fail else 0)
PY
done
# --spin-sync-us reaches the agent: its spin-pass promise (iter_bound_ns,
# measured once it has made 1024 passes, 0 before; ns rounded down from
# TSC ticks) is at least 200 us (199 us allowed), and
# a 10-100 us deadline goes to the LAPIC only for the rule's timing reasons.
# (Not "every timer falls back": a promise published 200 us ahead is
# less far ahead by the time the guest arms, so some may be taken.)
"$vmm" --timers 50 --config exitless --min-us 10 --max-us 100 \
	--spin-sync-us 200 --json --timeout 240 >"$out" 2>"$err"
rc=$?
cat "$err" >&2
[ $rc -eq 0 ] || { echo "FAIL: --spin-sync-us 200 exited $rc"; cat "$out"; exit 1; }
python3 - "$out" <<'PY' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
e, a = r["configs"]["exitless"], r["agent"]
why = {k: v for k, v in e["fallback_reasons"].items() if v}
ok = (e["timers"] == 50 and e["lost"] == 0 and e["early"] == 0 and
      (a["iter_bound_ns"] == 0 or a["iter_bound_ns"] >= 199000) and
      set(why) <= {"too_close", "stale", "past", "disabled"})
print("vmm-test:", "ok" if ok else "FAIL:", f"(--spin-sync-us 200: agent "
      f"promises {a['iter_bound_ns']} ns ahead, fallbacks {why})")
sys.exit(0 if ok else 1)
PY
"$vmm" --timers 100 --halt-poll kvm,smart:5 --json --timeout 240 \
	--metrics "$svg.prom" >"$out" 2>"$err"
rc=$?
cat "$err" >&2
[ $rc -eq 0 ] || { echo "FAIL: --halt-poll kvm,smart:5 exited $rc"; cat "$out"; exit 1; }
python3 - "$out" <<'PY' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
c = r.get("configs", {})
want = {f"{n}@{m}" for n in ("plain", "exitless") for m in ("kvm", "smart:5")}
fail = []
if set(c) != want:
    fail.append(f"one entry per configuration and mode: {sorted(c)}")
for name, k in c.items():
    if k["timers"] != 100 or k["lost"] != 0:
        fail.append(f"{name}: 100 timers, none lost")
    if k["halt_poll"] != name.split("@")[1]:
        fail.append(f"{name}: names its halt-poll mode")
    if name.startswith("exitless") and k["agent"]["fires"] < k["pv_fired"]:
        fail.append(f"{name}: the agent fired what the guest saw fire")
for f in fail:
    print("FAIL:", f)
print("vmm-test:", "FAIL" if fail else "ok", "(timer workload per halt-poll mode)")
sys.exit(1 if fail else 0)
PY
python3 - "$svg.prom" <<'PY' || exit 1
import re, sys
# the agent's counters as Prometheus text: each family once (HELP, TYPE,
# then its samples together), one sample per halt-poll run, well-formed
fams, cur, fail, runs = [], None, [], set()
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    m = re.match(r"# TYPE (\S+) (counter|gauge|histogram)$", line)
    if m:
        fams.append(m.group(1)); cur = m.group(1); continue
    if line.startswith("# HELP "):
        continue
    m = re.match(r'([a-z_]+)\{([^}]*)\} ([0-9]+)$', line)
    if not m or not m.group(1).startswith(cur or "?"):
        fail.append(f"sample outside its family: {line}")
        continue
    runs.update(re.findall(r'run="([^"]*)"', m.group(2)))
if len(fams) != len(set(fams)):
    fail.append("a family appears twice")
if "exitless_agent_fires_total" not in fams:
    fail.append("no fires counter")
if runs != {"kvm", "smart:5"}:
    fail.append(f"one label set per run: {sorted(runs)}")
for f in fail:
    print("FAIL:", f)
print("vmm-test:", "FAIL" if fail else "ok", f"(--metrics: {len(fams)} families)")
sys.exit(1 if fail else 0)
PY
"$vmm" --workload pingpong --service-us 1,20,50 --rounds 100 --warmup 20 \
	--json --plot "$svg" --timeout 240 >"$out" 2>"$err"
rc=$?
cat "$err" >&2
[ $rc -eq 0 ] || { echo "FAIL: --workload pingpong exited $rc"; cat "$out"; exit 1; }
cat "$out"
python3 - "$out" "$svg" <<'PY' || exit 1
import json, sys
import xml.etree.ElementTree as ET
r = json.load(open(sys.argv[1]))
names = ["halt", "host-poll", "fixed100", "smart", "haltpoll", "no-hlt-exit",
         "host-poll-smart"]
fig = ["round_trips", "rtt_p50_ns", "rtt_p99_ns", "guest_poll_cpu",
       "host_poll_cpu", "halt_exits_per_rtt"]
fail = []
def check(cond, what):
    if not cond:
        fail.append(what)
rows = r.get("pingpong", [])
got = {(x["config"], x["service_us"]) for x in rows}
check(got == {(n, s) for n in names for s in (1, 20, 50)} and len(rows) == 21,
      f"every configuration for 1, 20, 50 us: {sorted(got)}")
curves = 0
for x in rows:
    w = f'{x["config"]} {x["service_us"]} us'
    if "error" in x:
        check(isinstance(x["error"], str) and x["error"] and
              not any(k in x for k in fig), f"{w}: an error and no figures")
        continue
    curves += 1
    check(all(k in x for k in fig), f"{w}: every figure")
    check(x["round_trips"] == 100, f"{w}: 100 round trips recorded")
    check(0 < x["rtt_p50_ns"] <= x["rtt_p99_ns"] <= x["rtt_max_ns"],
          f"{w}: percentiles ordered")
    check(0 <= x["guest_poll_cpu"] <= 1.0 and 0 <= x["host_poll_cpu"] <= 1.0,
          f"{w}: CPU shares are shares of one CPU")
    check(x["halt_exits_per_rtt"] >= 0, f"{w}: halt exits counted")
    # structural, not timing: the guest polls only in its poll configs,
    # and KVM cannot poll where the ceiling is 0
    if x["config"] not in ("fixed100", "smart", "haltpoll"):
        check(x["guest_poll_cpu"] == 0, f"{w}: the guest did not poll")
    if x["config"] in ("halt", "fixed100", "smart", "haltpoll"):
        check(x["host_poll_cpu"] == 0 and x["kvm"]["halt_attempted_poll"] == 0,
              f"{w}: KVM did not poll with KVM_CAP_HALT_POLL 0")
    check(x["kvm"]["irq_injections"] >= x["round_trips"],
          f"{w}: one completion interrupt per round trip")
svg = ET.parse(sys.argv[2]).getroot()
lines = svg.findall(".//{http://www.w3.org/2000/svg}polyline")
check(len(lines) == curves, f"plot: {len(lines)} curves for {curves} rows with figures")
for f in fail:
    print("FAIL:", f)
print("vmm-test:", "FAIL" if fail else "ok", "(pingpong, 21 rows, plot)")
sys.exit(1 if fail else 0)
PY
# The device thread may first run long after it was created (a busy CPU):
# a request the guest posted by then must still be completed (it was
# not: the thread took that request for its starting point, and the guest
# waited for ever).
"$vmm" --workload pingpong --service-us 1 --pp-configs halt --rounds 20 \
	--warmup 0 --test-device-start-ms 300 --timeout 30 --json >"$out" 2>"$err"
rc=$?
cat "$err" >&2
[ $rc -eq 0 ] || { echo "FAIL: a late device thread lost the first request (exit $rc)"; exit 1; }
echo "vmm-test: ok (a late device thread completes the first request)"
for v in 0 1; do
	"$vmm" --timers 50 --vcpus 2 --test-fault-vcpu $v --json --timeout 240 \
		>"$out" 2>"$err"
	rc=$?
	cat "$err" >&2
	[ $rc -eq 1 ] || { echo "FAIL: --test-fault-vcpu $v exited $rc, not 1"; exit 1; }
	grep -q "vCPU $v: guest exception 14 (#PF) in ring 3: .*, rip 0, .*, cr2 0\$" "$err" ||
		{ echo "FAIL: --test-fault-vcpu $v: no #PF report for vCPU $v"; exit 1; }
	grep -q "guest vCPU $v stopped by an exception" "$err" ||
		{ echo "FAIL: --test-fault-vcpu $v: no stop report"; exit 1; }
	if grep -q "Sanitizer\|KVM_RUN\|watchdog" "$err"; then
		echo "FAIL: --test-fault-vcpu $v: the stop was not clean"; exit 1
	fi
	echo "vmm-test: ok (vCPU $v's guest exception reported, the other vCPU stopped)"
done
