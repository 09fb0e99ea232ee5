/* SPDX-License-Identifier: MIT */
/* The pingpong workload, host side: the device (device.c) behind an irqfd
 * MSI route to vCPU 0, and what each configuration changes on the host at
 * its phase marker (under c->lock):
 *   halt, fixed100, smart, haltpoll: host halt polling off (0), so each
 *     row measures one mechanism;
 *   host-poll: KVM_CAP_HALT_POLL at KVM's default 200 us (KVM's rule);
 *   host-poll-smart: the ceiling chosen by the smart host rule (hpoll.c);
 *   no-hlt-exit: KVM_CAP_X86_DISABLE_EXITS(HLT), which KVM takes only
 *     before the first vCPU: set then when the run asked for no
 *     configuration that needs HLT exits (setup.c), else asked of the
 *     running VM here, and its refusal reported as the row's error. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "app.h"

#define DEV_GSI 8

const char *const pp_names[VMM_PP_CFGS] = {
	"halt", "host-poll", "fixed100", "smart", "haltpoll", "no-hlt-exit",
	"host-poll-smart",
};

void setup_pingpong(struct ctx *c)
{
	int rc = irq_msi_irqfds(&c->vmm, DEV_GSI, 1, VMM_VEC_DEVICE,
				&c->dev_efd);

	if (rc)
		die("device irqfd", -rc);
	/* the spare CPU, where the timer workload puts the agent */
	rc = device_start(&c->dev, &c->mb->req, c->dev_efd, c->o.agent_cpu,
			  c->host_khz, c->o.test_device_delay_ms);
	if (rc)
		die("device thread", -rc);
}

void teardown_pingpong(struct ctx *c)
{
	device_stop(c->dev, &c->dev_completions, &c->dev_inject_errors);
	c->dev = NULL;
}

static void no_hlt_exit(struct ctx *c, struct pp_phase *p)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_DISABLE_EXITS,
				      .args = { KVM_X86_DISABLE_EXITS_HLT } };
	int err;

	if (c->no_hlt_exit == 1)
		return;
	if (c->no_hlt_exit < 0) {
		snprintf(p->error, sizeof(p->error),
			 "KVM_CAP_X86_DISABLE_EXITS(HLT) refused at VM "
			 "creation: %s", strerror(-c->no_hlt_exit));
		return;
	}
	err = ioctl(c->vmm.vm, KVM_ENABLE_CAP, &cap) < 0 ? errno : 0;
	if (!err) {
		c->no_hlt_exit = 1;
		return;
	}
	snprintf(p->error, sizeof(p->error),
		 "KVM_CAP_X86_DISABLE_EXITS(HLT) refused: %s (KVM takes it "
		 "only before the first vCPU; run --pp-configs no-hlt-exit "
		 "for a VM of its own)", strerror(err));
}

static int begin(struct ctx *c, uint32_t svc, uint32_t cfg,
		 struct pp_phase *p)
{
	static const struct hp_mode off = { .kind = HP_OFF };
	static const struct hp_mode kvm = { .kind = HP_KVM };
	struct hp_mode smart = { .kind = HP_SMART, .period_ms = 10 };
	const struct hp_mode *m = &off;
	int rc;

	for (int i = 0; i < c->o.nhp; i++)
		if (c->o.hp[i].kind == HP_SMART)
			smart.period_ms = c->o.hp[i].period_ms;
	if (cfg == VMM_PP_HOST_POLL)
		m = &kvm;
	if (cfg == VMM_PP_HOST_POLL_SMART)
		m = &smart;
	if (cfg == VMM_PP_NO_HLT_EXIT)
		no_hlt_exit(c, p);
	rc = hp_begin(c, m);
	if (rc && !p->error[0])
		snprintf(p->error, sizeof(p->error), "host halt polling: %s",
			 strerror(-rc));
	__atomic_store_n(&c->mb->pp_skip, p->error[0] ? 1u : 0u,
			 __ATOMIC_RELEASE);
	device_set_service(c->dev, c->o.services_us[svc]);
	return 0;
}

int pingpong_phase(struct ctx *c, int idx, uint32_t v)
{
	uint32_t cfg = v & 0x3f, svc = (v >> 8) & 0xff;
	struct pp_phase *p;
	int rc;

	if (c->o.workload != WORKLOAD_PINGPONG || idx != 0 ||
	    cfg >= VMM_PP_CFGS || svc >= c->o.nservices || (v >> 16))
		return -EPROTO;
	p = &c->pp[svc][cfg];
	if (v & VMM_PP_RECORD) {
		p->have_hist = hp_read_hists(c, p->hist_before) == 0;
		return stats_read(&c->stats[0], p->before[0]);
	}
	if (!(v & VMM_PHASE_END))
		return begin(c, svc, cfg, p);
	rc = stats_read(&c->stats[0], p->after[0]);
	if (p->have_hist)
		p->have_hist = hp_read_hists(c, p->hist_after) == 0;
	p->hp_changes = hp_end(c);
	p->hp_last_ns = cfg == VMM_PP_HOST_POLL_SMART ? hp_window(c) : 0;
	p->ran = 1;
	if (!rc)
		rc = hp_set(c, 0);
	return rc;
}
