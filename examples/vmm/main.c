/* SPDX-License-Identifier: MIT */
/* exitless-vmm: a sample VMM on /dev/kvm. Two workloads in one tiny guest:
 *  timer:    the same guest timer workload on the plain LAPIC TSC-deadline
 *            timer and on the exitless path (pvtimer area + libagent +
 *            libidlepoll in the guest), side by side, optionally once per
 *            host halt-poll mode (--halt-poll);
 *  pingpong: a request to a device thread, completed after a service time
 *            by an interrupt, waited for in seven ways (pingpong.c).
 * Policy lives here: what is fatal (everything: this is an example, it
 * exits with a message), in which order things start and stop. Each
 * subsystem has its file (vmm.h lists them).
 *
 * Exit status: 0 success, 1 error, 77 when /dev/kvm is absent or unusable
 * (so a test can skip). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <exitless/agent.h>

#include "app.h"

void die(const char *what, int err)
{
	fprintf(stderr, "exitless-vmm: %s: %s\n", what, strerror(err));
	exit(1);
}

/* Why the run failed, or 0: every vCPU done with guest status 0. */
static int check_vcpus(struct ctx *c)
{
	if (watchdog_expired()) {
		fprintf(stderr, "exitless-vmm: watchdog: guest still running "
			"after %d s (a lost %s?)\n", c->o.timeout_s,
			c->o.workload == WORKLOAD_PINGPONG ? "completion" : "timer");
		if (c->o.workload == WORKLOAD_PINGPONG) {
			const struct vmm_percpu *pc =
				mem_gpa(&c->vmm, VMM_PERCPU_GPA(0), sizeof(*pc));

			/* guest-written, for a human: no decision on them */
			fprintf(stderr, "exitless-vmm: requests %llu, device "
				"completions %llu (inject errors %llu), "
				"completion interrupts %llu, interrupt seq %llu\n",
				(unsigned long long)c->mb->req.seq,
				(unsigned long long)c->dev_completions,
				(unsigned long long)c->dev_inject_errors,
				(unsigned long long)pc->dev_count,
				(unsigned long long)pc->seq);
		}
		return 1;
	}
	for (int i = 0; i < c->o.vcpus; i++) {
		int rc = c->vc[i].rc;

		if (rc == -EINTR && stopped())
			continue; /* stopped because another vCPU failed */
		if (rc == -EFAULT && c->faulted[i]) {
			fprintf(stderr, "exitless-vmm: guest vCPU %d stopped "
				"by an exception (above); the others were "
				"stopped\n", i);
			return 1;
		}
		if (rc == -EPROTO && c->vcpu[i].last_exit)
			fprintf(stderr, "exitless-vmm: vCPU %d: unexpected exit "
				"reason %u\n", i, c->vcpu[i].last_exit);
		if (rc) {
			fprintf(stderr, "exitless-vmm: vCPU %d: KVM_RUN: %s\n",
				i, strerror(-rc));
			return 1;
		}
		if (c->guest_status[i] || !c->done[i]) {
			fprintf(stderr, "exitless-vmm: guest vCPU %d failed "
				"(status %u)\n", i, c->guest_status[i]);
			return 1;
		}
	}
	return stopped() ? 1 : 0;
}

static int report_timers(struct ctx *c)
{
	static struct result r[HP_MODES_MAX][VMM_CFG_COUNT];
	int have[HP_MODES_MAX][VMM_CFG_COUNT], bad = 0;
	int nrep = c->o.nhp ? c->o.nhp : 1;

	memset(have, 0, sizeof(have));
	for (int rep = 0; rep < nrep; rep++) {
		for (uint32_t i = 0; i < VMM_CFG_COUNT; i++) {
			have[rep][i] = c->ran[rep][i];
			memset(&r[rep][i], 0, sizeof(r[rep][i]));
			if (have[rep][i])
				summarize(c, rep, i, &r[rep][i]);
			else if (c->o.configs & (1u << i))
				bad = 1;
			bad |= have[rep][i] && r[rep][i].lost != 0;
		}
	}
	if (c->o.json) {
		print_json_configs(c, r, have);
	} else {
		for (int rep = 0; rep < nrep; rep++)
			print_table(c, r[rep], have[rep], rep);
	}
	if (c->o.plot && plot_timers(c, r, have, c->o.plot))
		bad = 1;
	if (c->o.metrics && write_metrics(c, c->o.metrics))
		bad = 1;
	for (int rep = 0; rep < nrep; rep++)
		for (uint32_t i = 0; i < VMM_CFG_COUNT; i++)
			free(r[rep][i].sorted_ns);
	return bad;
}

static int report_pingpong(struct ctx *c)
{
	static struct pp_result r[VMM_PP_SVC_MAX][VMM_PP_CFGS];
	int bad = 0;

	for (uint32_t s = 0; s < c->o.nservices; s++) {
		for (uint32_t i = 0; i < VMM_PP_CFGS; i++) {
			pp_summarize(c, s, i, &r[s][i]);
			/* a row must have run, and have figures or an error */
			if ((c->o.pp_configs & (1u << i)) &&
			    (!r[s][i].ran ||
			     (!r[s][i].error && r[s][i].rounds != c->o.rounds)))
				bad = 1;
		}
	}
	print_pingpong(c, r);
	if (c->o.plot && plot_pingpong(c, r, c->o.plot))
		bad = 1;
	for (uint32_t s = 0; s < c->o.nservices; s++)
		for (uint32_t i = 0; i < VMM_PP_CFGS; i++)
			free(r[s][i].sorted_ns);
	return bad;
}

static int wants_smart(const struct ctx *c)
{
	if (c->o.workload == WORKLOAD_PINGPONG)
		return 1; /* also for the histograms each row reports */
	for (int i = 0; i < c->o.nhp; i++)
		if (c->o.hp[i].kind == HP_SMART)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct ctx c = { .efd = { -1, -1 }, .dev_efd = -1,
				.pvagent_stats = { .cpu = -1 },
				.lock = PTHREAD_MUTEX_INITIALIZER };
	int rc, bad;

	parse(argc, argv, &c.o);
	place(&c.o);
	setup(&c);
	if (wants_smart(&c)) {
		rc = hp_setup(&c);
		if (rc && c.o.workload == WORKLOAD_TIMER)
			die("--halt-poll smart (KVM_CAP_HALT_POLL and the halt "
			    "histograms)", -rc);
		/* pingpong: the host-poll-smart row reports the error */
	}
	alarm_mask(SIG_BLOCK); /* pvagent_new() and the device start threads */
	if (c.o.workload == WORKLOAD_PINGPONG)
		setup_pingpong(&c);
	else
		setup_agent(&c);
	stop_install_handlers();
	pin_self(c.o.cpus[0]);
	start_vcpu_threads(&c);
	alarm_mask(SIG_UNBLOCK);

	alarm((unsigned int)c.o.timeout_s);
	run_vcpus(&c);
	alarm(0);
	hp_end(&c);
	if (c.agent_running)
		pvagent_stop(c.agent);
	teardown_pingpong(&c);
	rc = check_vcpus(&c);
	if (rc)
		return rc;
	if (c.o.workload == WORKLOAD_PINGPONG)
		bad = report_pingpong(&c);
	else
		bad = report_timers(&c);

	hp_destroy(&c);
	pvagent_destroy(c.agent);
	if (c.dev_efd >= 0)
		close(c.dev_efd);
	teardown(&c);
	return bad;
}
