/* SPDX-License-Identifier: MIT */
/* TSC helpers for tests and benchmarks (x86: the guest's clock is the TSC). */
#ifndef EXITLESS_TEST_TSC_H
#define EXITLESS_TEST_TSC_H

#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

static inline uint64_t tsc_now(void)
{
	return __builtin_ia32_rdtsc();
}

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* TSC ticks per microsecond, measured against CLOCK_MONOTONIC over ~20 ms. */
static inline uint64_t tsc_per_us(void)
{
	uint64_t t0 = mono_ns(), c0 = tsc_now(), t1, c1;

	do
		t1 = mono_ns();
	while (t1 - t0 < 20000000ull);
	c1 = tsc_now();
	return (c1 - c0) * 1000ull / (t1 - t0);
}

/* Pin the calling thread; returns 0 or an errno (ignored on 1-CPU hosts). */
static inline int pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

#endif
