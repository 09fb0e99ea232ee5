/* SPDX-License-Identifier: MIT */
/* exitless-vmm's own state, shared by main.c, cli.c and report.c: the
 * options, the run's context, the result of one configuration. Private to
 * the program; the subsystems (vmm.h) know nothing of it. cpu_set_t wants
 * _GNU_SOURCE defined before any include. */
#ifndef EXITLESS_VMM_APP_H
#define EXITLESS_VMM_APP_H

#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include <exitless/agent.h>
#include <exitless/pvtimer.h>

#include "vmm.h"

/* The KVM statistics read around each phase (report.c names them; the
 * report's rows index result.kvm[] in this order). */
#define NSTATS 7
extern const char *const stat_names[];

struct opts {
	uint32_t timers, min_us, max_us, configs, idle_policy;
	uint64_t halt_cost_ns, poll_slack_ns, seed, margin_ns;
	int json, inject_msi, adaptive, fifo, timeout_s, vcpu_cpu, agent_cpu;
	int vcpus;
	uint32_t test_fault; /* --test-fault-vcpu N: 1 + N, else 0 */
	int cpus[VMM_VCPUS_MAX]; /* host CPU of each vCPU thread, -1: any */
	const char *guest;
};

struct ctx;

/* What a vCPU thread hands to vcpu_run()'s port callback. */
struct vcpu_ctx {
	struct ctx *c;
	int idx;
	int rc; /* vcpu_run()'s result */
	pthread_t thread;
};

struct ctx {
	struct opts o;
	struct vmm vmm;
	struct vcpu vcpu[VMM_VCPUS_MAX];
	struct stats stats[VMM_VCPUS_MAX];
	struct vcpu_ctx vc[VMM_VCPUS_MAX];
	struct pvtimer_area *area;
	struct agent *agent;
	struct vmm_mailbox *mb;
	uint32_t tsc_khz;
	int efd[VMM_VCPUS_MAX];
	/* lock: the vCPU threads' port writes (console, phases) */
	pthread_mutex_t lock;
	int agent_running;
	int begun[VMM_CFG_COUNT], ended[VMM_CFG_COUNT];
	uint64_t before[VMM_VCPUS_MAX][VMM_CFG_COUNT][NSTATS];
	uint64_t after[VMM_VCPUS_MAX][VMM_CFG_COUNT][NSTATS];
	int ran[VMM_CFG_COUNT];
	struct agent_stats agent_stats;
	char line[256];
	size_t line_len;
	uint32_t guest_status[VMM_VCPUS_MAX];
	int done[VMM_VCPUS_MAX];
	int faulted[VMM_VCPUS_MAX]; /* the guest reported an exception */
};

struct result {
	struct vmm_counters k;
	uint64_t kvm[NSTATS];
	uint64_t p50_ns, p99_ns, max_ns;
	uint64_t lost;
};

/* The CPUs the process may use, for an unpinned agent thread. */
extern cpu_set_t allowed_set;

/* main.c */
void die(const char *what, int err);

/* cli.c */
void parse(int argc, char **argv, struct opts *o);
void place(struct opts *o);

/* report.c */
void summarize(struct ctx *c, uint32_t cfg, struct result *r);
void print_table(struct ctx *c, struct result *r, int have[2]);
void print_json(struct ctx *c, struct result *r, int have[2]);

#endif /* EXITLESS_VMM_APP_H */
