/* SPDX-License-Identifier: MIT */
/* The timer agent (libagent) as this VMM uses it: dedicated or adaptive,
 * pinned or not, one irqfd (or KVM_SIGNAL_MSI) injector per slot, the TSC
 * map from each vCPU's KVM_VCPU_TSC_OFFSET; started when the first vCPU
 * enters the exitless phase, stopped after the last one left it. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>

#include <exitless/agent.h>
#include <exitless/pvtimer.h>

#include "app.h"

#define PV_GSI 1

void setup_agent(struct ctx *c)
{
	struct pvagent_injector inj = { .kind = PVAGENT_INJ_IRQFD };
	struct pvtimer_tsc_map map;
	int rc;
	PVAGENT_OPTS(ao, .mode = c->o.adaptive ? PVAGENT_MODE_ADAPTIVE :
					       PVAGENT_MODE_DEDICATED);

	if (c->o.fifo) {
		/* a spinning agent preempted by other work breaks its
		 * promises: guests fall back (stale) and timers run late */
		ao.sched_policy = SCHED_FIFO;
		ao.sched_priority = 10;
	}
	/* how far ahead a spinning agent promises to look again: deadlines
	 * closer than this plus the margin fall back (too_close); shorter
	 * needs an agent that is not preempted (--fifo) */
	ao.spin_sync_ns = c->o.spin_sync_ns;
	if (c->o.agent_cpu >= 0) {
		ao.cpu_policy = PVAGENT_CPU_FIXED;
		ao.cpu = c->o.agent_cpu;
	}
	if (!c->o.inject_msi) {
		rc = irq_msi_irqfds(&c->vmm, PV_GSI, (uint32_t)c->o.vcpus,
				    VMM_VEC_PVTIMER, c->efd);
		if (rc)
			die("irqfd", -rc);
	}
	/* One map for the area: every vCPU must see the same offset (KVM
	 * keeps a VM's vCPUs in sync unless a VMM sets them apart). */
	for (int i = 1; i < c->o.vcpus; i++) {
		if (c->tsc_offset[i] != c->tsc_offset[0]) {
			fprintf(stderr, "exitless-vmm: vCPU TSC offsets differ "
				"(%lld, %lld): one area needs one map\n",
				(long long)c->tsc_offset[0],
				(long long)c->tsc_offset[i]);
			die("TSC map", EINVAL);
		}
	}
	rc = pvtimer_tsc_map_init(&map, c->host_khz, c->tsc_khz,
				  c->tsc_offset[0]);
	if (!rc)
		rc = pvagent_new(&ao, &c->agent);
	if (rc)
		die("pvagent_new", -rc);
	rc = pvagent_attach_area(c->agent, c->area, &map, NULL);
	/* slot i belongs to vCPU i, whose APIC ID is i */
	for (int i = 0; !rc && i < c->o.vcpus; i++) {
		if (c->o.inject_msi) {
			inj.kind = PVAGENT_INJ_MSI;
			inj.fd = c->vmm.vm;
			inj.msi_address = 0xfee00000u | ((uint32_t)i << 12);
		} else {
			inj.fd = c->efd[i];
		}
		rc = pvagent_bind_slot(c->agent, 0, (uint32_t)i, &inj);
	}
	if (rc)
		die("agent set-up", -rc);
}

int agent_phase_begin(struct ctx *c)
{
	cpu_set_t mine;
	int widen, rc;

	if (c->agent_running)
		return 0;
	widen = c->o.agent_cpu < 0 && CPU_COUNT(&allowed_set) > 0 &&
		sched_getaffinity(0, sizeof(mine), &mine) == 0;
	/* an unpinned agent thread inherits this pinned vCPU thread's CPU:
	 * let it have them all */
	if (widen)
		sched_setaffinity(0, sizeof(allowed_set), &allowed_set);
	alarm_mask(SIG_BLOCK);
	rc = pvagent_start(c->agent);
	alarm_mask(SIG_UNBLOCK);
	if (widen)
		sched_setaffinity(0, sizeof(mine), &mine);
	if (!rc)
		c->agent_running = 1;
	return rc;
}

int agent_phase_end(struct ctx *c, int rep)
{
	int rc;

	if (!c->agent_running)
		return 0;
	c->pvagent_stats.sz = sizeof(c->pvagent_stats);
	rc = pvagent_get_stats(c->agent, &c->pvagent_stats);
	if (!rc) {
		c->agent_rep[rep] = c->pvagent_stats;
		rc = pvagent_stop(c->agent);
	}
	c->agent_running = 0;
	return rc;
}
