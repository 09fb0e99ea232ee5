/* SPDX-License-Identifier: MIT */
/* The timer workload's phase markers, under c->lock. Each configuration
 * runs once per host halt-poll mode (repetition rep): the mode is applied
 * when the first vCPU enters the phase and undone after the last left it,
 * as is the agent for the exitless configuration (the guest meets at a
 * rendezvous around each phase). Each vCPU's KVM counters are read by its
 * own thread at its own markers, after that set-up, so it is not
 * counted. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>

#include <asm/kvm_para.h>

#include "app.h"

static int phase_begin(struct ctx *c, int idx, int rep, uint32_t cfg)
{
	int rc;

	if (c->begun[rep][cfg] == 0) {
		if (c->o.nhp) {
			rc = hp_begin(c, &c->o.hp[rep]);
			if (rc)
				return rc;
		}
		if (cfg == VMM_CFG_EXITLESS) {
			rc = agent_phase_begin(c);
			if (rc)
				return rc;
		}
	}
	c->begun[rep][cfg]++;
	return stats_read(&c->stats[idx], c->before[idx][rep][cfg]);
}

static int phase_end(struct ctx *c, int idx, int rep, uint32_t cfg)
{
	int rc = stats_read(&c->stats[idx], c->after[idx][rep][cfg]);

	if (rc)
		return rc;
	/* what the guest asked of KVM for PV EOI, read on the vCPU's own
	 * thread (KVM_RUN is not active at this exit) */
	if (vcpu_get_msr(&c->vcpu[idx], MSR_KVM_PV_EOI_EN,
			 &c->pv_eoi_msr[idx][rep][cfg]))
		c->pv_eoi_msr[idx][rep][cfg] = UINT64_MAX;
	if (++c->ended[rep][cfg] < c->o.vcpus)
		return 0;
	c->ran[rep][cfg] = 1;
	if (c->o.nhp)
		c->hp_changes[rep][cfg] = hp_end(c);
	if (cfg == VMM_CFG_EXITLESS)
		rc = agent_phase_end(c, rep);
	return rc;
}

int timer_phase(struct ctx *c, int idx, uint32_t v)
{
	uint32_t cfg = v & 0x7f, rep = v >> VMM_PHASE_REP_SHIFT;
	int nrep = c->o.nhp ? c->o.nhp : 1;

	if (c->o.workload != WORKLOAD_TIMER || cfg >= VMM_CFG_COUNT ||
	    rep >= (uint32_t)nrep || (v & ~(0x7fu | VMM_PHASE_END |
					   (0xffu << VMM_PHASE_REP_SHIFT))))
		return -EPROTO;
	if (v & VMM_PHASE_END)
		return phase_end(c, idx, (int)rep, cfg);
	return phase_begin(c, idx, (int)rep, cfg);
}
