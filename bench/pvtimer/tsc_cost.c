/* SPDX-License-Identifier: MIT */
/* pvtimer-tsc-cost: what converting a guest TSC deadline to the host's TSC
 * (pvtimer_tsc_to_host(), once per arm the agent reads) and back costs:
 * same rates (the identity fast path of 1.2), the same identity written as
 * a 48-bit fixed-point scale of 1.0 (the multiply and shift 1.1 did for
 * every map in to_guest), and a real scale (one 128/64 division in
 * to_host), measured in the same run. Median of --runs runs
 * of ns per call over a chain of dependent conversions. Prints figures;
 * never passes or fails on time.
 *
 * usage: pvtimer-tsc-cost [--iterations N] [--runs R] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitless/pvtimer.h"
#include "order.h"
#include "tsc.h"

#define MAX_RUNS 15

static uint64_t ticks_per_us;

/* ns per call; each input depends on the last output, so calls cannot
 * overlap and the figure is a latency */
static double per_call(const struct pvtimer_tsc_map *m, int to_host, size_t n)
{
	uint64_t x = 0x123456789abull, t0 = tsc_now();

	for (size_t i = 0; i < n; i++)
		x = (to_host ? pvtimer_tsc_to_host(m, x) : pvtimer_tsc_to_guest(m, x)) +
		    (i & 0xff);
	t0 = tsc_now() - t0;
	__asm__ __volatile__("" ::"r"(x));
	return (double)t0 * 1000.0 / (double)ticks_per_us / (double)n;
}

int main(int argc, char **argv)
{
	struct pvtimer_tsc_map same, unit = {.mult = 1ull << 48, .shift = 48,
					     .offset = -12345}, scaled;
	const char *names[] = {"identity (fast path)", "scale 1.0 as 2^48 >> 48",
			       "scaled (2100000/1999999 kHz)"};
	const struct pvtimer_tsc_map *maps[] = {&same, &unit, &scaled};
	double v[2][3][MAX_RUNS];
	size_t n = 10000000;
	int runs = 5;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--iterations"))
			n = strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
	}
	if (n < 1000 || runs < 1 || runs > MAX_RUNS || argc % 2 == 0) {
		fprintf(stderr, "usage: %s [--iterations N>=1000] [--runs 1..%d]\n",
			argv[0], MAX_RUNS);
		return 2;
	}
	ticks_per_us = tsc_per_us();
	pin_self(0);
	if (pvtimer_tsc_map_init(&same, 2100000, 2100000, -12345) < 0 ||
	    pvtimer_tsc_map_init(&scaled, 2100000, 1999999, -12345) < 0)
		return 1;
	for (int r = 0; r < runs; r++)
		for (int k = 0; k < 3; k++)
			for (int d = 0; d < 2; d++)
				v[d][k][r] = per_call(maps[k], d, n);
	printf("pvtimer-tsc-cost: %zu dependent calls per run, median of %d runs, "
	       "TSC %llu MHz\n", n, runs, (unsigned long long)ticks_per_us);
	for (int k = 0; k < 3; k++)
		printf("%-28s to_host %6.2f ns   to_guest %6.2f ns\n", names[k],
		       order_median(v[1][k], (size_t)runs),
		       order_median(v[0][k], (size_t)runs));
	return 0;
}
