/* SPDX-License-Identifier: MIT */
/* The agent's clock is the TSC; nanoseconds only for options and stats. */
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "clock.h"
#include "exitless/agent.h"

/* Process-wide: set by the first pvagent_new() given a rate, else measured
 * once. Read relaxed (a word written before any thread uses it). */
static uint64_t tsc_khz;
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 10 ms against CLOCK_MONOTONIC_RAW: good to ~0.1% on a noisy host,
 * enough for a lateness histogram and for ns-valued options. */
static void calibrate(void)
{
	uint64_t n0, t0, n1, t1, khz, expected;

	if (__atomic_load_n(&tsc_khz, __ATOMIC_RELAXED))
		return; /* given by the caller: no busy-wait */
	n0 = mono_ns();
	t0 = agent_tsc();

	do {
		n1 = mono_ns();
	} while (n1 - n0 < 10000000ull);
	t1 = agent_tsc();
	khz = (t1 - t0) * 1000000ull / (n1 - n0);
	/* a rate given meanwhile (agent_set_tsc_khz) wins */
	expected = 0;
	__atomic_compare_exchange_n(&tsc_khz, &expected, khz ? khz : 1000000,
				    false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

void agent_set_tsc_khz(uint64_t khz)
{
	if (khz)
		__atomic_store_n(&tsc_khz, khz, __ATOMIC_RELAXED);
}

uint64_t agent_tsc_khz(void)
{
	uint64_t khz = __atomic_load_n(&tsc_khz, __ATOMIC_RELAXED);

	if (khz)
		return khz;
	pthread_once(&tsc_once, calibrate);
	return __atomic_load_n(&tsc_khz, __ATOMIC_RELAXED);
}

/* 32.32 factors: the error is below one part in 2^32 of the factor, far
 * under the calibration's own (~0.1%); a product that overflows 64 bits
 * saturates. */
void agent_clock_init(struct agent_clock *c, uint64_t khz)
{
	if (!khz)
		khz = 1000000;
	c->khz = khz;
	c->identity = khz == 1000000;
	c->ns_to_tsc_mul = (uint64_t)(((unsigned __int128)khz << AGENT_CLOCK_SHIFT) /
				      1000000u);
	c->tsc_to_ns_mul = (uint64_t)(((unsigned __int128)1000000u
				       << AGENT_CLOCK_SHIFT) / khz);
}
