#!/bin/sh
# Run exitless-vmm briefly, with one vCPU and with two, and check its JSON
# for consistency: both configurations ran, every timer fired and was
# recorded (none lost), the counters agree with each other. No timing
# assertions. Then the fatal-exception path: with two vCPUs, each in turn
# calls through NULL in ring 3; the VMM must report that vCPU's #PF at
# rip 0 and stop the other cleanly: exit 1, no sanitizer report. Exit 77
# (skip) when the VMM reports /dev/kvm absent or unusable.
# usage: vmm-test.sh PATH/TO/exitless-vmm
set -u
vmm=$1
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
timers=200
for vcpus in 1 2; do
	"$vmm" --timers $timers --vcpus $vcpus --json --timeout 240 \
		>"$out" 2>"$err"
	rc=$?
	cat "$err" >&2
	[ $rc -eq 77 ] && { echo "SKIP: no usable /dev/kvm"; exit 77; }
	[ $rc -eq 0 ] || { echo "FAIL: exitless-vmm --vcpus $vcpus exited $rc"; cat "$out"; exit 1; }
	cat "$out"
	python3 - "$out" "$timers" "$vcpus" <<'PY' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
per, vcpus = int(sys.argv[2]), int(sys.argv[3])
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
    # every timer ends on exactly one interrupt that the guest EOIs; a
    # pvtimer fire of a cancelled generation may add a spurious one
    check(k["wrmsr_eoi"] >= k["timers"], f"{name}: an EOI per timer")
    check(k["late_p50_ns"] <= k["late_p99_ns"] <= k["late_max_ns"],
          f"{name}: percentiles ordered")
    if "kvm_irq_injections" in k:
        check(k["kvm_irq_injections"] >= k["timers"],
              f"{name}: KVM injected at least one interrupt per timer")
p, e = c.get("plain", {}), c.get("exitless", {})
if p:
    check(p["wrmsr_tsc_deadline"] == n, "plain: one TSC_DEADLINE write per timer")
    check(p["fallbacks"] == n and p["pv_arms"] == 0, "plain: LAPIC timer only")
    check(p["wrmsr_eoi"] == n, "plain: exactly one interrupt per timer")
if e:
    check(e["pv_arms"] + e["fallbacks"] >= n, "exitless: every timer armed")
    check(e["pv_fired"] <= e["pv_arms"], "exitless: pv-fired timers were pv-armed")
    check(e["lapic_fired"] <= e["fallbacks"],
          "exitless: LAPIC-fired timers fell back first")
    check(sum(e["fallback_reasons"].values()) == e["fallbacks"],
          "exitless: every fallback has a reason")
    a = r.get("agent", {})
    check(a.get("inject_errors", 1) == 0, "agent: no injection errors")
    check(a.get("fires", 0) >= e["pv_fired"],
          "agent: fired every timer the guest saw fire")
for f in fail:
    print("FAIL:", f)
print("vmm-test:", "FAIL" if fail else "ok",
      f"({per} timers per configuration per vCPU, {vcpus} vCPU(s))")
sys.exit(1 if fail else 0)
PY
done
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
