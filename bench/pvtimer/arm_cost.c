/* SPDX-License-Identifier: MIT */
/* pvtimer-arm-cost: what arming a timer costs a guest on the pvtimer path
 * (seqlock write, the pending ORs, the re-check), against
 * timerfd_settime(), measured in the same run, in these modes:
 * - host idle: the host holds a promise but touches nothing (every line
 *   stays in the guest's cache; arms are real pv arms, not fallbacks);
 * - servicing (free-running; the guest arms back to back and a host thread
 *   on the other CPU services the area): the 1.1 agent loop (publish every
 *   pass, summary exchanged even when zero), the 1.2 loop (republish only
 *   when less than half of the promised distance P remains, summary loaded
 *   first, batch calls; passes back to back) and the 1.2 loop paced (a pass
 *   only when it renews the promise, every P/2: all a promise asks for);
 * - lockstep: the host does one thing between two arms, so each arm pays
 *   for exactly that line (the breakdown by line), or one whole pass.
 * The host loops are in arm_hosts.c. Every mode runs --runs times,
 * interleaved; the figures are the medians over runs of each run's
 * percentiles, in ns, over the arms the host held (an arm that fell back is
 * counted, not timed). While a free-running host thread is preempted (the
 * machine is shared) the guest waits, untimed, so that "servicing" samples
 * are taken while the host runs. Prints figures; never passes or fails on
 * time.
 *
 * usage: pvtimer-arm-cost [--iterations N] [--runs R] [--promise-us P]
 * (P: how far ahead the servicing loops promise; the agent's spin promise
 * is 20 us at least, docs/agent.md) */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "arm_hosts.h"
#include "exitless/pvtimer_guest.h"
#include "order.h"
#include "tsc.h"

#define MAX_RUNS 15
#define MODES (1 + ARM_HOST_COUNT) /* idle, then every host loop */

struct result {
	double p50, p99, p999;
	size_t fallbacks, held;
	uint64_t passes, publishes;
};

static struct arm_bench bench;
static uint64_t *samples;
static size_t iterations = 100000;

static double pct_ns(const uint64_t *v, size_t n, double p)
{
	return (double)order_pct_u64(v, n, p) * 1000.0 / (double)bench.ticks_per_us;
}

/* One arm, timed; only arms the host then holds are kept. */
static void arm_once(struct pvtimer_guest *g, size_t *held, size_t *fallbacks)
{
	uint64_t t0 = tsc_now();
	int r = pvtimer_guest_arm(g, t0 + ARM_DEADLINE_US * bench.ticks_per_us);
	uint64_t t1 = tsc_now();

	if (r == PVTIMER_GUEST_PV)
		samples[(*held)++] = t1 - t0;
	else
		(*fallbacks)++;
}

/* Untimed: until the free-running host has begun a pass in the last 5 us
 * (it is on its CPU, not preempted by the shared machine's other load). */
static void wait_host_running(void)
{
	uint64_t recent = 5 * bench.ticks_per_us;

	while (tsc_now() - __atomic_load_n(&bench.alive_tsc, __ATOMIC_RELAXED) > recent)
		;
}

static int is_lockstep(int host)
{
	return host >= STEP_NOTHING;
}

/* @host: -1 for no host thread, else an enum arm_host. */
static int measure(struct pvtimer_guest *g, int host, struct result *res)
{
	pthread_attr_t attr;
	pthread_t thread;
	cpu_set_t cpu1;
	size_t held = 0, fallbacks = 0;
	uint64_t long_promise = ARM_LONG_PROMISE_US * bench.ticks_per_us, promise;

	/* A fresh long promise, before every deadline by more than the
	 * margin, so an idle host's arms are held, not fallbacks; renewed
	 * between arms (untimed) while no host thread runs, by the host
	 * thread's lockstep steps, or replaced by a servicing loop's own. */
	pvtimer_host_activate(bench.area, promise = tsc_now() + long_promise, tsc_now());
	bench.publishes = 0;
	bench.passes = 0;
	bench.ready = bench.done = 0;
	if (host >= 0) {
		bench.host = (enum arm_host)host;
		__atomic_store_n(&bench.run, 1, __ATOMIC_RELEASE);
		CPU_ZERO(&cpu1);
		CPU_SET(1, &cpu1);
		pthread_attr_init(&attr);
		pthread_attr_setaffinity_np(&attr, sizeof(cpu1), &cpu1);
		if (pthread_create(&thread, &attr, arm_host_main, &bench) != 0)
			return -1;
		pthread_attr_destroy(&attr);
		/* let the host loop settle: 10 ms */
		for (uint64_t t = tsc_now() + 10000 * bench.ticks_per_us; tsc_now() < t;)
			;
	}
	for (size_t i = 0; i < iterations; i++) {
		if (host >= 0 && is_lockstep(host)) {
			while (__atomic_load_n(&bench.ready, __ATOMIC_ACQUIRE) != i + 1)
				;
			arm_once(g, &held, &fallbacks);
			__atomic_store_n(&bench.done, i + 1, __ATOMIC_RELEASE);
		} else {
			if (host < 0)
				arm_renew(&bench, &promise, long_promise, tsc_now());
			else
				wait_host_running();
			arm_once(g, &held, &fallbacks);
		}
	}
	if (host >= 0) {
		__atomic_store_n(&bench.run, 0, __ATOMIC_RELEASE);
		pthread_join(thread, NULL);
	}
	order_sort_u64(samples, held);
	*res = (struct result){pct_ns(samples, held, 0.50), pct_ns(samples, held, 0.99),
			       pct_ns(samples, held, 0.999), fallbacks, held,
			       bench.passes, bench.publishes};
	return 0;
}

static double timerfd_p50(void)
{
	struct itimerspec its = {{0, 0}, {0, 1000000}}, off = {{0, 0}, {0, 0}};
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);

	for (size_t i = 0; i < iterations; i++) {
		uint64_t t0 = tsc_now();

		timerfd_settime(tfd, 0, &its, NULL);
		samples[i] = tsc_now() - t0;
	}
	timerfd_settime(tfd, 0, &off, NULL);
	close(tfd);
	order_sort_u64(samples, iterations);
	printf("%-36s p50 %7.1f  p99 %7.1f  p99.9 %8.1f ns\n",
	       "timerfd_settime (kernel hrtimer)", pct_ns(samples, iterations, 0.5),
	       pct_ns(samples, iterations, 0.99), pct_ns(samples, iterations, 0.999));
	return pct_ns(samples, iterations, 0.5);
}

static struct result results[MODES][MAX_RUNS];

static void print_mode(int m, int runs, double idle_p50, double nothing_p50)
{
	double p50[MAX_RUNS], p99[MAX_RUNS], p999[MAX_RUNS], med;
	size_t fb = 0, held = 0;
	uint64_t passes = 0, pubs = 0;

	for (int r = 0; r < runs; r++) {
		p50[r] = results[m][r].p50;
		p99[r] = results[m][r].p99;
		p999[r] = results[m][r].p999;
		fb += results[m][r].fallbacks;
		held += results[m][r].held;
		passes += results[m][r].passes;
		pubs += results[m][r].publishes;
	}
	med = order_median(p50, (size_t)runs);
	printf("%-36s p50 %7.1f  p99 %7.1f  p99.9 %8.1f ns  %5.2fx idle", 
	       m ? arm_host_name((enum arm_host)(m - 1)) : "host idle", med,
	       order_median(p99, (size_t)runs), order_median(p999, (size_t)runs),
	       med / idle_p50);
	if (m - 1 > STEP_NOTHING)
		printf("  %+6.1f ns vs handshake", med - nothing_p50);
	printf("\n");
	if (fb || passes || pubs)
		printf("%-36s   fell back %zu of %zu; host passes with work %llu, "
		       "publishes %llu\n", "", fb, fb + held,
		       (unsigned long long)passes, (unsigned long long)pubs);
}

int main(int argc, char **argv)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 1);
	struct pvtimer_guest g;
	int runs = 3;
	uint64_t promise_us = 50;
	double idle[MAX_RUNS], nothing[MAX_RUNS], idle_p50, nothing_p50;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--iterations"))
			iterations = strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--promise-us"))
			promise_us = strtoull(argv[i + 1], NULL, 0);
	}
	if (iterations < 1000 || runs < 1 || runs > MAX_RUNS || argc % 2 == 0 ||
	    promise_us < 10 || promise_us > 100000) {
		fprintf(stderr, "usage: %s [--iterations N>=1000] [--runs 1..%d] "
			"[--promise-us 10..100000]\n", argv[0], MAX_RUNS);
		return 2;
	}
	samples = calloc(iterations, sizeof(*samples));
	bench.ticks_per_us = tsc_per_us();
	bench.promise_tsc = promise_us * bench.ticks_per_us;
	o.margin_tsc = 5 * bench.ticks_per_us;
	o.tsc_khz = (uint32_t)(bench.ticks_per_us * 1000);
	if (!samples || pvtimer_area_new(&o, &bench.area) < 0 ||
	    pvtimer_guest_init(&g, pvtimer_area_mem(bench.area),
			       pvtimer_area_bytes(bench.area), 0, 0xec) < 0) {
		fprintf(stderr, "set-up failed\n");
		return 1;
	}
	pin_self(0);
	printf("pvtimer-arm-cost: %zu arms per mode and run, %d runs, TSC %llu MHz, "
	       "guest on CPU0, host on CPU1, promise P = %llu us\n", iterations, runs,
	       (unsigned long long)bench.ticks_per_us, (unsigned long long)promise_us);
	timerfd_p50();
	for (int r = 0; r < runs; r++)
		for (int m = 0; m < MODES; m++)
			if (measure(&g, m - 1, &results[m][r]) < 0) {
				fprintf(stderr, "pthread_create failed\n");
				return 1;
			}
	for (int r = 0; r < runs; r++) {
		idle[r] = results[0][r].p50;
		nothing[r] = results[1 + STEP_NOTHING][r].p50;
	}
	idle_p50 = order_median(idle, (size_t)runs);
	nothing_p50 = order_median(nothing, (size_t)runs);
	for (int m = 0; m < MODES; m++)
		print_mode(m, runs, idle_p50, nothing_p50);
	pvtimer_area_destroy(bench.area);
	free(samples);
	return 0;
}
