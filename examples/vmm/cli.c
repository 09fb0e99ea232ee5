/* SPDX-License-Identifier: MIT */
/* exitless-vmm's command line: the options, their defaults, and where the
 * vCPUs and the agent run when the user does not say (the CPUs this
 * process may use decide). Bad input exits here, before any KVM state
 * exists. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exitless/idlepoll.h>

#include "app.h"

#ifndef VMM_GUEST_PATH
#define VMM_GUEST_PATH "guest.bin"
#endif

#define CPU_AUTO (-2)

cpu_set_t allowed_set;

static void usage(void)
{
	fprintf(stderr,
		"usage: exitless-vmm [options]\n"
		"  --timers N          timers per configuration per vCPU (1000)\n"
		"  --vcpus N           1 or 2 vCPUs running the workload together (1)\n"
		"  --min-us N          shortest deadline from arm (50)\n"
		"  --max-us N          longest deadline from arm (2000)\n"
		"  --config LIST       plain,exitless (both)\n"
		"  --inject irqfd|msi  how the agent injects (irqfd)\n"
		"  --agent-mode dedicated|adaptive  (dedicated; adaptive when\n"
		"                      only one CPU is allowed)\n"
		"  --idle-policy NAME  libidlepoll policy in the guest (smart)\n"
		"  --halt-cost-us N    idlepoll's halt cost H (100: a trap into\n"
		"                      emulated ring 0 ~50 us + a wake-up 15-60 us)\n"
		"  --poll-slack-us N   polling may run this far past the deadline (100)\n"
		"  --margin-us N       pvtimer margin (5)\n"
		"  --vcpu-cpu N        host CPU of vCPU 0 (first allowed; others follow)\n"
		"  --agent-cpu N       host CPU of the agent (next allowed CPU no vCPU\n"
		"                      uses; -1 or none left: any, adaptive mode)\n"
		"  --seed N            deadline sequence (1)\n"
		"  --timeout S         watchdog (120)\n"
		"  --guest PATH        payload (%s)\n"
		"  --fifo              agent thread SCHED_FIFO (if permitted)\n"
		"  --json              machine-readable output\n"
		"  --test-fault-vcpu N test: vCPU N faults (NULL call) when\n"
		"                      the exitless configuration begins\n",
		VMM_GUEST_PATH);
}

static uint64_t num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s || *s == '-') {
		fprintf(stderr, "exitless-vmm: bad %s: %s\n", what, s);
		exit(1);
	}
	return v;
}

void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "timers", 1, 0, 't' },     { "min-us", 1, 0, 'a' },
		{ "max-us", 1, 0, 'b' },     { "config", 1, 0, 'c' },
		{ "inject", 1, 0, 'i' },     { "agent-mode", 1, 0, 'm' },
		{ "idle-policy", 1, 0, 'p' }, { "halt-cost-us", 1, 0, 'h' },
		{ "poll-slack-us", 1, 0, 's' }, { "margin-us", 1, 0, 'g' },
		{ "vcpu-cpu", 1, 0, 'v' },   { "agent-cpu", 1, 0, 'A' },
		{ "seed", 1, 0, 'S' },       { "timeout", 1, 0, 'T' },
		{ "guest", 1, 0, 'G' },      { "json", 0, 0, 'j' },
		{ "fifo", 0, 0, 'F' },       { "vcpus", 1, 0, 'n' },
		{ "test-fault-vcpu", 1, 0, 'X' },
		{ "help", 0, 0, '?' },       { 0, 0, 0, 0 },
	};
	int c, p;

	*o = (struct opts){ .timers = 1000, .min_us = 50, .max_us = 2000,
			    .configs = 3, .idle_policy = IDLEPOLL_POLICY_SMART,
			    .halt_cost_ns = 100000, .poll_slack_ns = 100000,
			    .seed = 1, .margin_ns = 5000, .timeout_s = 120,
			    .vcpu_cpu = CPU_AUTO, .agent_cpu = CPU_AUTO,
			    .adaptive = -1, .vcpus = 1,
			    .guest = VMM_GUEST_PATH };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 't': o->timers = (uint32_t)num(optarg, "--timers"); break;
		case 'a': o->min_us = (uint32_t)num(optarg, "--min-us"); break;
		case 'b': o->max_us = (uint32_t)num(optarg, "--max-us"); break;
		case 'c':
			o->configs = 0;
			if (strstr(optarg, "plain"))
				o->configs |= 1u << VMM_CFG_PLAIN;
			if (strstr(optarg, "exitless"))
				o->configs |= 1u << VMM_CFG_EXITLESS;
			break;
		case 'i': o->inject_msi = strcmp(optarg, "msi") == 0; break;
		case 'm': o->adaptive = strcmp(optarg, "adaptive") == 0; break;
		case 'p':
			p = idlepoll_policy_from_name(optarg);
			if (p < 0) {
				fprintf(stderr, "exitless-vmm: unknown policy %s\n",
					optarg);
				exit(1);
			}
			o->idle_policy = (uint32_t)p;
			break;
		case 'h': o->halt_cost_ns = num(optarg, "--halt-cost-us") * 1000; break;
		case 's': o->poll_slack_ns = num(optarg, "--poll-slack-us") * 1000; break;
		case 'g': o->margin_ns = num(optarg, "--margin-us") * 1000; break;
		case 'v': o->vcpu_cpu = (int)num(optarg, "--vcpu-cpu"); break;
		case 'A':
			o->agent_cpu = strcmp(optarg, "-1") == 0 ?
					       -1 : (int)num(optarg, "--agent-cpu");
			break;
		case 'S': o->seed = num(optarg, "--seed"); break;
		case 'T': o->timeout_s = (int)num(optarg, "--timeout"); break;
		case 'G': o->guest = optarg; break;
		case 'j': o->json = 1; break;
		case 'F': o->fifo = 1; break;
		case 'n': o->vcpus = (int)num(optarg, "--vcpus"); break;
		case 'X':
			o->test_fault = 1 + (uint32_t)num(optarg,
							  "--test-fault-vcpu");
			break;
		default: usage(); exit(c == '?' ? 1 : 0);
		}
	}
	if (optind != argc || !o->timers || !o->configs || o->vcpus < 1 ||
	    o->vcpus > VMM_VCPUS_MAX || o->test_fault > (uint32_t)o->vcpus ||
	    o->max_us < o->min_us || !o->min_us || o->max_us > 10000000) {
		usage();
		exit(1);
	}
}

/* Defaults from the CPUs we may run on (CI containers restrict them): the
 * vCPUs on the first ones, the agent on the next. With no CPU left for it
 * a spinning agent would take a vCPU's CPU away, so it sleeps (adaptive)
 * and is not pinned. */
static int cpu_taken(const struct opts *o, int n, int cpu)
{
	for (int i = 0; i < n; i++)
		if (o->cpus[i] == cpu)
			return 1;
	return 0;
}

void place(struct opts *o)
{
	cpu_set_t set;
	int allowed[CPU_SETSIZE], n = 0;

	CPU_ZERO(&allowed_set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		allowed_set = set;
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				allowed[n++] = i;
	}
	for (int v = 0; v < o->vcpus; v++) {
		o->cpus[v] = n ? allowed[v % n] : -1;
		if (v == 0 && o->vcpu_cpu != CPU_AUTO)
			o->cpus[v] = o->vcpu_cpu;
		for (int j = 0; v > 0 && j < n; j++) {
			if (!cpu_taken(o, v, allowed[j])) {
				o->cpus[v] = allowed[j];
				break;
			}
		}
	}
	o->vcpu_cpu = o->cpus[0];
	if (o->agent_cpu == CPU_AUTO) {
		o->agent_cpu = -1;
		for (int j = 0; j < n; j++) {
			if (!cpu_taken(o, o->vcpus, allowed[j])) {
				o->agent_cpu = allowed[j];
				break;
			}
		}
	}
	if (o->adaptive < 0)
		o->adaptive = o->agent_cpu < 0;
}
