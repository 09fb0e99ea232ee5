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
		"  --spin-sync-us N    how far ahead a spinning agent promises to\n"
		"                      look again (libagent's default, 20)\n"
		"  --no-pv-eoi         do not offer KVM PV EOI to the guest (offered\n"
		"                      where KVM supports it; exitless uses it)\n"
		"  --pv-eoi-plain      plain uses PV EOI too (a Linux guest's default)\n"
		"  --no-deadline-poll  exitless halts even when the deadline is\n"
		"                      closer than H (default: polls to it)\n"
		"  --backstop-us N     guest keeps its LAPIC timer at most N us ahead\n"
		"                      while the host holds a deadline (ABI liveness\n"
		"                      rule; 0: off, the default)\n"
		"  --vcpu-cpu N        host CPU of vCPU 0 (first allowed; others follow)\n"
		"  --agent-cpu N       host CPU of the agent (next allowed CPU no vCPU\n"
		"                      uses; -1 or none left: any, adaptive mode)\n"
		"  --seed N            deadline sequence (1)\n"
		"  --timeout S         watchdog (120; pingpong 600)\n"
		"  --guest PATH        payload (%s)\n"
		"  --fifo              agent thread SCHED_FIFO (if permitted)\n"
		"  --json              machine-readable output\n"
		"  --test-fault-vcpu N test: vCPU N faults (NULL call) when\n"
		"                      the exitless configuration begins\n"
		"  --workload timer|pingpong  (timer)\n"
		"  --halt-poll LIST    host halt polling, one run of each timer\n"
		"                      configuration per item: off, kvm (200 us\n"
		"                      ceiling, KVM's rule), smart[:PERIOD_MS] (10)\n"
		"  --host-halt-cost-us N  H of the smart host rule (50)\n"
		"pingpong (one vCPU; a device thread completes each request):\n"
		"  --service-us LIST   service times (1,20,50)\n"
		"  --rounds N          round trips recorded per configuration (2000)\n"
		"  --warmup N          round trips before recording (300)\n"
		"  --pp-configs LIST   halt,host-poll,fixed100,smart,haltpoll,\n"
		"                      no-hlt-exit,host-poll-smart (all)\n"
		"  --plot PATH         write the latency distributions as SVG\n"
		"  --metrics PATH      write the agent's counters (Prometheus text)\n"
		"  --test-device-start-ms N  test: the device thread first runs\n"
		"                      N ms late\n",
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

static void bad(const char *what, const char *s)
{
	fprintf(stderr, "exitless-vmm: bad %s: %s\n", what, s);
	exit(1);
}

/* Comma-separated items of @list, each handed to @fn. */
static void each_item(const char *list, struct opts *o,
		      void (*fn)(struct opts *, const char *))
{
	char buf[256], *save = NULL;

	if (strlen(list) >= sizeof(buf))
		bad("list", list);
	strcpy(buf, list);
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save))
		fn(o, t);
}

static void add_service(struct opts *o, const char *s)
{
	uint64_t us = num(s, "--service-us");

	if (o->nservices >= VMM_PP_SVC_MAX || us > 1000000)
		bad("--service-us", s);
	o->services_us[o->nservices++] = (uint32_t)us;
}

static void parse_services(struct opts *o, const char *list)
{
	o->nservices = 0;
	each_item(list, o, add_service);
	if (!o->nservices)
		bad("--service-us", list);
}

static void add_pp_config(struct opts *o, const char *s)
{
	for (uint32_t i = 0; i < VMM_PP_CFGS; i++) {
		if (strcmp(s, pp_names[i]) == 0) {
			o->pp_configs |= 1u << i;
			return;
		}
	}
	bad("--pp-configs", s);
}

static void parse_pp_configs(struct opts *o, const char *list)
{
	o->pp_configs = 0;
	each_item(list, o, add_pp_config);
	if (!o->pp_configs)
		bad("--pp-configs", list);
}

static void add_halt_poll(struct opts *o, const char *s)
{
	struct hp_mode m = { 0 };

	if (o->nhp >= HP_MODES_MAX)
		bad("--halt-poll (at most 3 modes)", s);
	if (strcmp(s, "off") == 0) {
		m.kind = HP_OFF;
	} else if (strcmp(s, "kvm") == 0) {
		m.kind = HP_KVM;
	} else if (strncmp(s, "smart", 5) == 0 && (!s[5] || s[5] == ':')) {
		m.kind = HP_SMART;
		m.period_ms = s[5] ? (uint32_t)num(s + 6, "--halt-poll smart:PERIOD_MS")
				   : 10;
		if (!m.period_ms || m.period_ms > 60000)
			bad("--halt-poll smart:PERIOD_MS", s);
	} else {
		bad("--halt-poll", s);
	}
	o->hp[o->nhp++] = m;
}

static void parse_halt_poll(struct opts *o, const char *list)
{
	o->nhp = 0;
	each_item(list, o, add_halt_poll);
}

const char *hp_name(const struct hp_mode *m, char *buf, size_t len)
{
	switch (m->kind) {
	case HP_OFF: return "off";
	case HP_KVM: return "kvm";
	case HP_SMART:
		snprintf(buf, len, "smart:%u", m->period_ms);
		return buf;
	default: return "default";
	}
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
		{ "test-fault-vcpu", 1, 0, 'X' }, { "backstop-us", 1, 0, 'B' },
		{ "workload", 1, 0, 'W' },   { "service-us", 1, 0, 'U' },
		{ "rounds", 1, 0, 'R' },     { "warmup", 1, 0, 'w' },
		{ "pp-configs", 1, 0, 'P' }, { "halt-poll", 1, 0, 'H' },
		{ "host-halt-cost-us", 1, 0, 'C' }, { "plot", 1, 0, 'O' },
		{ "metrics", 1, 0, 'M' },
		{ "test-device-start-ms", 1, 0, 'D' },
		{ "no-pv-eoi", 0, 0, 'E' },  { "pv-eoi-plain", 0, 0, 'L' },
		{ "no-deadline-poll", 0, 0, 'N' },
		{ "spin-sync-us", 1, 0, 'Y' },
		{ "help", 0, 0, '?' },       { 0, 0, 0, 0 },
	};
	int c, p, timeout_given = 0;

	*o = (struct opts){ .timers = 1000, .min_us = 50, .max_us = 2000,
			    .configs = 3, .idle_policy = IDLEPOLL_POLICY_SMART,
			    .halt_cost_ns = 100000, .poll_slack_ns = 100000,
			    .seed = 1, .margin_ns = 5000, .timeout_s = 120,
			    .vcpu_cpu = CPU_AUTO, .agent_cpu = CPU_AUTO,
			    .adaptive = -1, .vcpus = 1,
			    .guest = VMM_GUEST_PATH,
			    .services_us = { 1, 20, 50 }, .nservices = 3,
			    .rounds = 2000, .warmup = 300,
			    .pp_configs = (1u << VMM_PP_CFGS) - 1,
			    .host_halt_cost_ns = 50000, .pv_eoi = 1,
			    .deadline_poll = 1 };
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
		case 'T':
			o->timeout_s = (int)num(optarg, "--timeout");
			timeout_given = 1;
			break;
		case 'G': o->guest = optarg; break;
		case 'j': o->json = 1; break;
		case 'F': o->fifo = 1; break;
		case 'n': o->vcpus = (int)num(optarg, "--vcpus"); break;
		case 'B': o->backstop_us = (uint32_t)num(optarg, "--backstop-us"); break;
		case 'X':
			o->test_fault = 1 + (uint32_t)num(optarg,
							  "--test-fault-vcpu");
			break;
		case 'W':
			if (strcmp(optarg, "pingpong") == 0)
				o->workload = WORKLOAD_PINGPONG;
			else if (strcmp(optarg, "timer") == 0)
				o->workload = WORKLOAD_TIMER;
			else
				bad("--workload", optarg);
			break;
		case 'U': parse_services(o, optarg); break;
		case 'R': o->rounds = (uint32_t)num(optarg, "--rounds"); break;
		case 'w': o->warmup = (uint32_t)num(optarg, "--warmup"); break;
		case 'P': parse_pp_configs(o, optarg); break;
		case 'H': parse_halt_poll(o, optarg); break;
		case 'C':
			o->host_halt_cost_ns = num(optarg, "--host-halt-cost-us") * 1000;
			break;
		case 'O': o->plot = optarg; break;
		case 'E': o->pv_eoi = 0; break;
		case 'L': o->pv_eoi_plain = 1; break;
		case 'N': o->deadline_poll = 0; break;
		case 'Y':
			o->spin_sync_ns = num(optarg, "--spin-sync-us") * 1000;
			if (!o->spin_sync_ns || o->spin_sync_ns > 500000000)
				bad("--spin-sync-us", optarg);
			break;
		case 'M': o->metrics = optarg; break;
		case 'D':
			o->test_device_delay_ms =
				(uint32_t)num(optarg, "--test-device-start-ms");
			break;
		default: usage(); exit(c == '?' ? 1 : 0);
		}
	}
	/* a lost completion hangs the guest like a lost timer; but a loaded
	 * host stretches 40 000 round trips well past two minutes */
	if (o->workload == WORKLOAD_PINGPONG && !timeout_given)
		o->timeout_s = 600;
	if (o->workload == WORKLOAD_PINGPONG && o->vcpus != 1) {
		fprintf(stderr, "exitless-vmm: pingpong runs on one vCPU\n");
		exit(1);
	}
	if (optind != argc || !o->timers || !o->configs || o->vcpus < 1 ||
	    !o->rounds || !o->host_halt_cost_ns ||
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
