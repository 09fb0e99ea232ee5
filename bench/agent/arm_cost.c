/* SPDX-License-Identifier: MIT */
/* agent-arm-cost: what a guest's pv arm costs while the real agent
 * services its area, against the same arm with no host touching anything,
 * measured in the same run. A "guest" thread pinned on CPU 0 arms slot 0
 * in a loop the way a tick device would (a fresh deadline each time, 1 ms
 * ahead: a real pv arm, beyond the promise and its margin; every fourth
 * arm followed by a cancel), timing each arm with rdtsc, in three modes:
 * - host idle: no agent; the area is ACTIVE with a promise 500 us ahead,
 *   renewed between arms (untimed) when half of it is left;
 * - paced: a dedicated pvagent on CPU 1 (libagent as built: a pass only
 *   when it renews its promise);
 * - every turn: the same agent with a pass on every turn of its loop (the
 *   loop before pacing, through the engine's white-box seam).
 * Modes run interleaved, --runs times; figures are the medians over runs
 * of each run's percentiles (arms that fell back are counted, not timed),
 * and the agent's own rates while the guest arms (its counters before and
 * after the loop): passes (each loads the summary once), slot reads (in a
 * one-slot area whose deadlines never fall due, one per summary exchange:
 * a pass that found the bit) and header publishes. Prints figures; never
 * passes or fails on time.
 *
 * usage: agent-arm-cost [--iterations N] [--runs R] */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exitless/pvtimer_guest.h>

#include "internal.h"
#include "order.h"
#include "tsc.h"

#define MAX_RUNS 15
#define MODES 3
#define DEADLINE_US 1000ull
#define IDLE_PROMISE_US 500ull
#define VECTOR 0xec

enum mode { IDLE, PACED, EVERY_TURN };

static const char *const mode_names[MODES] = {
	"host idle (no agent, promise standing)",
	"agent, paced passes",
	"agent, a pass every turn",
};

struct result {
	double p50, p99, p999;
	uint64_t held, fallbacks;
	double passes_s, publishes_s, slot_reads_s;
};

static uint64_t *samples;
static size_t iterations = 100000;
static uint64_t tpu;

static int noop_inject(void *ctx, uint32_t area, uint32_t slot, uint8_t vector)
{
	(void)ctx;
	(void)area;
	(void)slot;
	(void)vector;
	return 0;
}

static double pct_ns(const uint64_t *v, size_t n, double p)
{
	return (double)order_pct_u64(v, n, p) * 1000.0 / (double)tpu;
}

static void spin_us(uint64_t us)
{
	for (uint64_t t = tsc_now() + us * tpu; tsc_now() < t;)
		;
}

/* The guest loop: @iterations timed arms of slot 0. With no agent
 * (@renew), the promise is renewed between arms, untimed. */
static void arm_loop(struct pvtimer_guest *g, struct pvtimer_area *area,
		     bool renew, struct result *res)
{
	uint64_t promise = 0, held = 0, fallbacks = 0;

	for (size_t i = 0; i < iterations; i++) {
		uint64_t t0, t1;
		int r;

		if (renew && (!promise ||
			      pvtimer_tsc_diff(promise, tsc_now()) <
				      (int64_t)(IDLE_PROMISE_US * tpu / 2))) {
			uint64_t now = tsc_now();

			promise = now + IDLE_PROMISE_US * tpu;
			pvtimer_host_publish(area, promise, now);
		}
		t0 = tsc_now();
		r = pvtimer_guest_arm(g, t0 + DEADLINE_US * tpu);
		t1 = tsc_now();
		if (r == PVTIMER_GUEST_PV)
			samples[held++] = t1 - t0;
		else
			fallbacks++;
		if (i % 4 == 3)
			pvtimer_guest_cancel(g);
	}
	order_sort_u64(samples, held);
	res->p50 = pct_ns(samples, held, 0.50);
	res->p99 = pct_ns(samples, held, 0.99);
	res->p999 = pct_ns(samples, held, 0.999);
	res->held = held;
	res->fallbacks = fallbacks;
}

static int measure(enum mode m, struct result *res)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 1, .margin_tsc = 5 * tpu,
			  .tsc_khz = (uint32_t)(tpu * 1000));
	PVAGENT_OPTS(ao, .mode = PVAGENT_MODE_DEDICATED,
		     .cpu_policy = PVAGENT_CPU_FIXED, .cpu = 1,
		     .tsc_khz = (uint32_t)(tpu * 1000));
	struct pvagent_injector inj = { .kind = PVAGENT_INJ_CALLBACK,
				      .fn = noop_inject };
	struct pvagent_stats st0 = { .sz = sizeof(st0) }, st1 = st0;
	struct pvtimer_area *area = NULL;
	struct pvagent *ag = NULL;
	struct pvtimer_guest g;
	uint64_t t0, t1;
	double secs;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (pvtimer_area_new(&o, &area) < 0 ||
	    pvtimer_guest_init(&g, pvtimer_area_mem(area),
			       pvtimer_area_bytes(area), 0, VECTOR) < 0)
		goto out;
	if (m == IDLE) {
		pvtimer_host_activate(area, tsc_now() + IDLE_PROMISE_US * tpu,
				      tsc_now());
		arm_loop(&g, area, true, res);
		rc = 0;
		goto out;
	}
	if (pvagent_new(&ao, &ag) < 0 ||
	    pvagent_attach_area(ag, area, NULL, NULL) < 0 ||
	    pvagent_bind_slot(ag, 0, 0, &inj) < 0)
		goto out;
	ag->pass_every_turn = m == EVERY_TURN;
	if (pvagent_start(ag) < 0)
		goto out;
	spin_us(10000); /* let the agent settle */
	if (pvagent_get_stats(ag, &st0) < 0)
		goto out;
	t0 = tsc_now();
	arm_loop(&g, area, false, res);
	t1 = tsc_now();
	if (pvagent_get_stats(ag, &st1) < 0)
		goto out;
	pvagent_stop(ag);
	secs = (double)(t1 - t0) / ((double)tpu * 1e6);
	res->passes_s = (double)(st1.scans - st0.scans) / secs;
	res->publishes_s = (double)(st1.publishes - st0.publishes) / secs;
	res->slot_reads_s = (double)(st1.slot_reads - st0.slot_reads) / secs;
	rc = 0;
out:
	pvagent_destroy(ag);
	pvtimer_area_destroy(area);
	return rc;
}

static struct result results[MODES][MAX_RUNS];

static double med_field(int m, int runs, size_t off)
{
	double v[MAX_RUNS];

	for (int r = 0; r < runs; r++)
		v[r] = *(const double *)((const char *)&results[m][r] + off);
	return order_median(v, (size_t)runs);
}

#define MED(m, runs, field) med_field(m, runs, offsetof(struct result, field))

int main(int argc, char **argv)
{
	int runs = 3;
	double idle_p50, idle_p99;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--iterations"))
			iterations = strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
	}
	if (iterations < 1000 || runs < 1 || runs > MAX_RUNS || argc % 2 == 0) {
		fprintf(stderr, "usage: %s [--iterations N>=1000] [--runs 1..%d]\n",
			argv[0], MAX_RUNS);
		return 2;
	}
	samples = calloc(iterations, sizeof(*samples));
	tpu = tsc_per_us();
	if (!samples || pin_self(0) < 0) {
		fprintf(stderr, "set-up failed\n");
		return 1;
	}
	printf("agent-arm-cost: %zu arms per mode and run, %d runs, TSC %llu MHz, "
	       "guest on CPU0, dedicated agent on CPU1, deadlines %llu us ahead, "
	       "every 4th arm cancelled\n",
	       iterations, runs, (unsigned long long)tpu,
	       (unsigned long long)DEADLINE_US);
	for (int r = 0; r < runs; r++)
		for (int m = 0; m < MODES; m++)
			if (measure((enum mode)m, &results[m][r]) < 0) {
				fprintf(stderr, "mode %s failed\n", mode_names[m]);
				return 1;
			}
	idle_p50 = MED(IDLE, runs, p50);
	idle_p99 = MED(IDLE, runs, p99);
	for (int m = 0; m < MODES; m++) {
		uint64_t held = 0, fb = 0;
		double p50 = MED(m, runs, p50), p99 = MED(m, runs, p99);

		for (int r = 0; r < runs; r++) {
			held += results[m][r].held;
			fb += results[m][r].fallbacks;
		}
		printf("%-40s p50 %6.1f  p99 %7.1f  p99.9 %8.1f ns  p50 %5.2fx idle"
		       "  p99 %5.2fx idle\n", mode_names[m], p50, p99,
		       MED(m, runs, p999), p50 / idle_p50, p99 / idle_p99);
		printf("%-40s   fell back %llu of %llu", "",
		       (unsigned long long)fb, (unsigned long long)(fb + held));
		if (m != IDLE)
			printf("; agent per s while arming: passes %.0f, slot reads "
			       "(= summary exchanges) %.0f, publishes %.0f",
			       MED(m, runs, passes_s), MED(m, runs, slot_reads_s),
			       MED(m, runs, publishes_s));
		printf("\n");
	}
	free(samples);
	return 0;
}
