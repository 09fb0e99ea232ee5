/* SPDX-License-Identifier: MIT */
/* agent-bench: the timer agent (dedicated and adaptive) against one timerfd
 * per vCPU thread, on the same random deadlines, in one run. Prints figures;
 * never passes or fails on time.
 *
 * This file: the command line and the matrix of runs; the runs are in
 * runs.c, the figures in output.c, the micro-benchmarks in micro.c. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <exitless/agent.h>
#include <exitless/pvtimer_abi.h>

#include "agent_bench.h"

static uint32_t parse_list(const char *s, uint64_t *out, uint32_t max)
{
	uint32_t n = 0;
	char *end;

	while (*s && n < max) {
		out[n++] = strtoull(s, &end, 10);
		if (*end != ',')
			break;
		s = end + 1;
	}
	return n;
}

/* "sleep_us[:spin_us],..." */
static uint32_t parse_sweep(const char *s, struct cfg *c)
{
	uint32_t n = 0;
	char *end;

	while (*s && n < 8) {
		c->sleep_sweep_us[n] = strtoull(s, &end, 10);
		c->spin_sweep_us[n] = 200;
		if (*end == ':')
			c->spin_sweep_us[n] = strtoull(end + 1, &end, 10);
		n++;
		if (*end != ',')
			break;
		s = end + 1;
	}
	return n;
}

static void usage(void)
{
	printf("usage: agent-bench [--json] [--slots 1,16,256,1024] "
	       "[--duration-ms 1000] [--reps 1]\n"
	       "       [--sweep 200:50,1000:200 (adaptive max sleep:spin "
	       "threshold, us)] "
	       "[--guest-threads 1] [--no-pin] [--heap]\n"
	       "       [--vcpu-cpu N (guests, timerfd threads)] "
	       "[--agent-cpu N] (default: the agent on the CPU a spin probe\n"
	       "       finds least stolen, the vCPUs on another)\n"
	       "       [--timerfd-cpu N (default: the vCPU CPU)] "
	       "[--fifo (adaptive agent SCHED_FIFO)]\n"
	       "       [--every-turn (a pass on every turn of the agent's loop: "
	       "the loop\n        before issue 10's pacing, via the engine's seam)]\n"
	       "       [--breakdown (stderr: where fires later than 5 us "
	       "spent their time)]\n");
}

struct one {
	uint32_t mode;       /* agent mode, or UINT32_MAX for timerfd */
	uint64_t sleep_us;
	uint64_t spin_us;
};

static int run_config(const struct cfg *c, uint32_t n, const struct one *o,
		      struct result *out)
{
	struct result reps[16] = { 0 };
	uint32_t nr = c->reps;
	int rc = 0;

	for (uint32_t k = 0; k < nr && !rc; k++)
		rc = o->mode == UINT32_MAX
			     ? run_timerfd(c, n, &reps[k])
			     : run_agent(c, n, o->mode, o->sleep_us, o->spin_us,
					 &reps[k]);
	if (!rc)
		median_of(reps, nr, out);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "slots", required_argument, NULL, 's' },
		{ "duration-ms", required_argument, NULL, 'd' },
		{ "reps", required_argument, NULL, 'r' },
		{ "sweep", required_argument, NULL, 'w' },
		{ "guest-threads", required_argument, NULL, 'g' },
		{ "no-pin", no_argument, NULL, 'p' },
		{ "heap", no_argument, NULL, 'H' },
		{ "agent-cpu", required_argument, NULL, 'a' },
		{ "vcpu-cpu", required_argument, NULL, 'v' },
		{ "timerfd-cpu", required_argument, NULL, 't' },
		{ "fifo", no_argument, NULL, 'f' },
		{ "hostile", required_argument, NULL, 'X' },
		{ "breakdown", no_argument, NULL, 'B' },
		{ "every-turn", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cfg c = { .slots = { 1, 16, 256, 1024 }, .nslots = 4,
			 .duration_ns = 1000000000ull, .reps = 1,
			 .guest_threads = 1, .pin = 1, .agent_cpu = -1, .vcpu_cpu = -1,
			 .timerfd_cpu = -1 };
	uint64_t tmp[8];
	struct result all[128];
	uint32_t nres = 0, hostile = 0;
	int opt;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'j':
			c.json = 1;
			break;
		case 's':
			c.nslots = parse_list(optarg, tmp, 8);
			for (uint32_t i = 0; i < c.nslots; i++)
				c.slots[i] = (uint32_t)tmp[i];
			break;
		case 'd':
			c.duration_ns = strtoull(optarg, NULL, 10) * 1000000ull;
			break;
		case 'r':
			c.reps = (uint32_t)strtoul(optarg, NULL, 10);
			if (c.reps < 1 || c.reps > 16)
				c.reps = 1;
			break;
		case 'w':
			c.nsweep = parse_sweep(optarg, &c);
			break;
		case 'g':
			c.guest_threads = (uint32_t)strtoul(optarg, NULL, 10);
			if (!c.guest_threads)
				c.guest_threads = 1;
			break;
		case 'p':
			c.pin = 0;
			break;
		case 'H':
			c.heap = 1;
			break;
		case 'a':
			c.agent_cpu = atoi(optarg);
			break;
		case 'v':
			c.vcpu_cpu = atoi(optarg);
			break;
		case 't':
			c.timerfd_cpu = atoi(optarg);
			break;
		case 'f':
			c.fifo = 1;
			break;
		case 'B':
			c.breakdown = 1;
			break;
		case 'E':
			c.every_turn = 1;
			break;
		case 'X':
			hostile = (uint32_t)strtoul(optarg, NULL, 10);
			if (!hostile || hostile > PVTIMER_ABI_MAX_SLOTS)
				hostile = 255;
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	calibrate();
	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	if (!samples)
		return 1;
	if (c.heap && !c.json) {
		heap_bench();
		inject_bench();
	}
	if (c.pin) {
		/* default placement: the agent gets the CPU that gives a
		 * busy thread the most time, the vCPUs another one */
		int best = probe_cpus(!c.json);

		if (c.agent_cpu < 0)
			c.agent_cpu = best;
		if (c.vcpu_cpu < 0)
			c.vcpu_cpu = c.agent_cpu == 0 &&
						     sysconf(_SC_NPROCESSORS_ONLN) > 1
					     ? 1
					     : 0;
	}
	if (c.breakdown)
		hiccups(c.agent_cpu, 1000000000ull, khz);
	if (hostile) {
		int rc = hostile_bench(&c, hostile);

		free(samples);
		return rc;
	}
	if (!c.json)
		printf("tsc %llu kHz, %ld CPUs, %llu ms per run, deadlines "
		       "10us-10ms, lateness in ns\n"
		       "%-8s %-16s %5s %8s %9s %9s %9s %9s %9s %8s %6s %6s\n",
		       (unsigned long long)khz, sysconf(_SC_NPROCESSORS_ONLN),
		       (unsigned long long)(c.duration_ns / 1000000), "impl",
		       "mode", "slots", "timers", "p50", "p99", "p99.9", "max",
		       "timers/s", "cpu/tmr", "agcpu", "fallbk");
	for (uint32_t i = 0; i < c.nslots; i++) {
		struct one ones[12] = {
			{ UINT32_MAX, 0, 0 },
			{ PVAGENT_MODE_DEDICATED, 0, 0 },
			{ PVAGENT_MODE_ADAPTIVE, 1000, 200 },
		};
		uint32_t nones = 3, base = nres;

		for (uint32_t k = 0; k < c.nsweep; k++)
			if (c.sleep_sweep_us[k] && c.spin_sweep_us[k] &&
			    (c.sleep_sweep_us[k] != 1000 || c.spin_sweep_us[k] != 200))
				ones[nones++] = (struct one){
					PVAGENT_MODE_ADAPTIVE, c.sleep_sweep_us[k],
					c.spin_sweep_us[k] };
		for (uint32_t k = 0; k < nones && nres < 128; k++) {
			if (run_config(&c, c.slots[i], &ones[k], &all[nres]))
				continue;
			if (!c.json)
				print_text(&all[nres], &all[base]);
			nres++;
		}
	}
	if (c.json) {
		printf("{\"runs\": [");
		for (uint32_t i = 0; i < nres; i++)
			print_json(&all[i], i == 0);
		printf("\n]}\n");
	}
	free(samples);
	return 0;
}
