/* SPDX-License-Identifier: MIT */
/* pvtimer-arm-cost: what arming a timer costs a guest on the pvtimer path
 * (seqlock write, two `lock or`, the re-check), with nobody servicing the
 * area and with a host thread servicing it on the other CPU (the lines then
 * bounce between caches), against arming a kernel hrtimer with
 * timerfd_settime(), measured in the same run. Prints medians and
 * percentiles in ns; never passes or fails on time.
 *
 * usage: pvtimer-arm-cost [--iterations N] */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "exitless/pvtimer.h"
#include "exitless/pvtimer_guest.h"
#include "tsc.h"

static struct pvtimer_area *area;
static uint64_t ticks_per_us;
static int host_run;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_ns(uint64_t *v, size_t n, double p)
{
	return (double)v[(size_t)(p * (double)(n - 1))] * 1000.0 / (double)ticks_per_us;
}

static void report(const char *name, uint64_t *v, size_t n, double base_p50)
{
	double p50;

	qsort(v, n, sizeof(*v), cmp_u64);
	p50 = pct_ns(v, n, 0.50);
	printf("%-34s p50 %8.1f  p99 %8.1f  p99.9 %9.1f ns", name, p50,
	       pct_ns(v, n, 0.99), pct_ns(v, n, 0.999));
	if (base_p50 > 0)
		printf("   %.2fx timerfd", p50 / base_p50);
	printf("\n");
}

/* A servicing host: publish, pass, read and ack, as fast as it can. */
static void *host_main(void *arg)
{
	struct pvtimer_pending_iter it;
	struct pvtimer_slot_snapshot snap;
	uint32_t s;

	(void)arg;
	while (__atomic_load_n(&host_run, __ATOMIC_ACQUIRE)) {
		uint64_t now = tsc_now();

		pvtimer_host_publish(area, now + 50 * ticks_per_us, now);
		pvtimer_host_pending_begin(area, &it);
		while (pvtimer_host_pending_next(area, &it, &s))
			if (pvtimer_host_read_slot(area, s, now, &snap) == 0 && snap.armed)
				pvtimer_host_ack(area, s, snap.gen);
	}
	return NULL;
}

static void measure_arm(struct pvtimer_guest *g, uint64_t *v, size_t n,
			size_t *fallbacks)
{
	*fallbacks = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = tsc_now();
		int r = pvtimer_guest_arm(g, t0 + 1000 * ticks_per_us);

		v[i] = tsc_now() - t0;
		*fallbacks += r != PVTIMER_GUEST_PV;
	}
}

int main(int argc, char **argv)
{
	size_t n = 100000, fallbacks;
	PVTIMER_AREA_OPTS(o, .slot_count = 1);
	struct pvtimer_guest g;
	struct itimerspec its = {{0, 0}, {0, 1000000}}, off = {{0, 0}, {0, 0}};
	pthread_attr_t attr;
	pthread_t host;
	cpu_set_t cpu1;
	uint64_t *v;
	double base;
	int tfd;

	if (argc == 3 && !strcmp(argv[1], "--iterations"))
		n = strtoul(argv[2], NULL, 0);
	if (n < 1000) {
		fprintf(stderr, "usage: %s [--iterations N>=1000]\n", argv[0]);
		return 2;
	}
	v = calloc(n, sizeof(*v));
	ticks_per_us = tsc_per_us();
	o.margin_tsc = 5 * ticks_per_us;
	o.tsc_khz = (uint32_t)(ticks_per_us * 1000);
	if (!v || pvtimer_area_new(&o, &area) < 0 ||
	    pvtimer_guest_init(&g, pvtimer_area_mem(area), pvtimer_area_bytes(area),
			       0, 0xec) < 0) {
		fprintf(stderr, "set-up failed\n");
		return 1;
	}
	pin_self(0);
	printf("pvtimer-arm-cost: %zu arms each, TSC %llu MHz, guest thread on CPU0\n",
	       n, (unsigned long long)ticks_per_us);

	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = tsc_now();

		timerfd_settime(tfd, 0, &its, NULL);
		v[i] = tsc_now() - t0;
	}
	timerfd_settime(tfd, 0, &off, NULL);
	close(tfd);
	qsort(v, n, sizeof(*v), cmp_u64);
	base = pct_ns(v, n, 0.50);
	report("timerfd_settime (kernel hrtimer)", v, n, 0);

	/* nobody servicing: the promise is far ahead, lines stay local */
	pvtimer_host_activate(area, tsc_now() + 3600ull * 1000000 * ticks_per_us,
			      tsc_now());
	measure_arm(&g, v, n, &fallbacks);
	report("pvtimer arm, host idle", v, n, base);

	__atomic_store_n(&host_run, 1, __ATOMIC_RELEASE);
	CPU_ZERO(&cpu1);
	CPU_SET(1, &cpu1);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(cpu1), &cpu1);
	if (pthread_create(&host, &attr, host_main, NULL) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		return 1;
	}
	for (uint64_t t = tsc_now() + 10000 * ticks_per_us; tsc_now() < t;)
		;
	measure_arm(&g, v, n, &fallbacks);
	report("pvtimer arm, host servicing (CPU1)", v, n, base);
	printf("  arms that fell back while the host serviced: %zu of %zu "
	       "(a descheduled host thread breaks its promise)\n", fallbacks, n);
	__atomic_store_n(&host_run, 0, __ATOMIC_RELEASE);
	pthread_join(host, NULL);
	pthread_attr_destroy(&attr);
	pvtimer_area_destroy(area);
	free(v);
	return 0;
}
