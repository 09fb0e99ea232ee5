/* SPDX-License-Identifier: MIT */
/* The timer workload's headline figure: exit-causing guest operations per
 * timer, by cause. Each counted operation is one VM exit on a KVM where
 * guest ring 0 runs natively (here it is emulated, so KVM's own `exits`
 * measure emulation batches, not these): arming the LAPIC timer (a
 * TSC_DEADLINE wrmsr), cancelling it (the same MSR, 0), the EOI (x2APIC
 * wrmsr) and hlt. Also what PV EOI did: whether the guest turned it on (as
 * the host read MSR_KVM_PV_EOI_EN back) and how many EOI writes it saved. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include <asm/kvm_para.h>

#include "app.h"

struct ops {
	double arm, cancel, eoi, halt, total;
};

static struct ops per_timer(const struct result *r)
{
	const struct vmm_counters *k = &r->k;
	double n = k->timers ? (double)k->timers : 1.0;
	/* cancels are TSC_DEADLINE writes too (counted in tsc_wrmsr); the
	 * guest wrote them, so cancels <= tsc_wrmsr unless it lied */
	uint64_t cancels = k->lapic_cancels <= k->tsc_wrmsr ? k->lapic_cancels
							    : k->tsc_wrmsr;
	struct ops o = {
		.arm = (double)(k->tsc_wrmsr - cancels) / n,
		.cancel = (double)cancels / n,
		.eoi = (double)k->eoi_wrmsr / n,
		.halt = (double)k->hlt / n,
	};

	o.total = o.arm + o.cancel + o.eoi + o.halt;
	return o;
}

/* What MSR_KVM_PV_EOI_EN must hold while vCPU v has PV EOI on. */
static uint64_t pv_eoi_msr_want(int v)
{
	return (uint64_t)VMM_PERCPU_GPA(v) + VMM_PCPU_PV_EOI + KVM_MSR_ENABLED;
}

/* vCPUs whose MSR the host read back as the guest should have set it. */
static int pv_eoi_msr_ok(const struct ctx *c, int rep, int cfg)
{
	int ok = 0;

	for (int v = 0; v < c->o.vcpus; v++)
		ok += c->pv_eoi_msr[v][rep][cfg] == pv_eoi_msr_want(v);
	return ok;
}

static const char *pv_eoi_state(const struct ctx *c)
{
	if (!c->kvm_pv_eoi)
		return "unsupported";
	return c->o.pv_eoi ? "offered" : "withheld";
}

void print_exit_ops(const struct ctx *c, const struct result *r,
		    const int have[2], int rep)
{
	static const char *const names[2] = { "plain KVM", "exitless" };
	struct ops o[2] = { { 0 } };

	for (int i = 0; i < 2; i++)
		if (have[i])
			o[i] = per_timer(&r[i]);
	printf("  exit-causing guest ops per timer %11s %12s\n", names[0],
	       names[1]);
	printf("    %-30s %10.3f %12.3f\n", "arm (TSC_DEADLINE wrmsr)",
	       o[0].arm, o[1].arm);
	printf("    %-30s %10.3f %12.3f\n", "other (cancel: TSC_DEADLINE 0)",
	       o[0].cancel, o[1].cancel);
	printf("    %-30s %10.3f %12.3f\n", "EOI (x2APIC wrmsr)", o[0].eoi,
	       o[1].eoi);
	printf("    %-30s %10.3f %12.3f\n", "halt (hlt)", o[0].halt, o[1].halt);
	printf("    %-30s %10.3f %12.3f\n", "total", o[0].total, o[1].total);
	printf("  PV EOI: KVM %s", pv_eoi_state(c));
	for (int i = 0; i < 2; i++) {
		if (!have[i])
			continue;
		printf(", %s: %s (%d of %d vCPUs' MSR set), EOIs skipped %" PRIu64
		       " of %" PRIu64, i ? "exitless" : "plain",
		       r[i].k.pv_eoi ? "on" : "off", pv_eoi_msr_ok(c, rep, i),
		       c->o.vcpus, r[i].k.eoi_skipped,
		       r[i].k.eoi_skipped + r[i].k.eoi_wrmsr);
	}
	printf("\n");
	for (int i = 0; i < 2; i++)
		if (have[i] && r[i].k.pv_eoi && !r[i].k.eoi_skipped &&
		    r[i].k.eoi_wrmsr)
			printf("  PV EOI: %s had it on, yet KVM set the skip flag "
			       "for none of its interrupts (as on the nested "
			       "kvm_pvm host docs/vmm.md describes)\n",
			       i ? "exitless" : "plain");
	if (have[VMM_CFG_EXITLESS]) {
		const struct ops *e = &o[VMM_CFG_EXITLESS];

		printf("  exitless: waits polled to the deadline %" PRIu64
		       " of %" PRIu64 " (%s); per timer without its EOIs %.3f,"
		       " without its halts %.3f, without its arms (fallbacks)"
		       " %.3f\n",
		       r[1].k.deadline_polls, r[1].k.timers,
		       c->o.deadline_poll ? "on" : "off",
		       e->total - e->eoi, e->total - e->halt,
		       e->total - e->arm);
	}
}

void json_exit_ops(const struct ctx *c, const struct result *r, int rep,
		   int cfg)
{
	struct ops o = per_timer(r);

	printf(", \"exit_ops_per_timer\": {\"arm\": %.4f, \"cancel\": %.4f, "
	       "\"eoi\": %.4f, \"halt\": %.4f, \"total\": %.4f}",
	       o.arm, o.cancel, o.eoi, o.halt, o.total);
	printf(", \"pv_eoi_msr\": [");
	for (int v = 0; v < c->o.vcpus; v++)
		printf("%s%" PRIu64, v ? ", " : "", c->pv_eoi_msr[v][rep][cfg]);
	printf("], \"pv_eoi_msr_ok\": %d", pv_eoi_msr_ok(c, rep, cfg));
}

void json_exit_ops_run(const struct ctx *c)
{
	printf(", \"pv_eoi\": \"%s\", \"pv_eoi_plain\": %s, "
	       "\"deadline_poll\": %s",
	       pv_eoi_state(c), c->o.pv_eoi_plain ? "true" : "false",
	       c->o.deadline_poll ? "true" : "false");
}
