/* SPDX-License-Identifier: MIT */
/* agent-bench's measurements of the parts and of the host rather than of
 * the agent as a whole: the library's heap (the heap-vs-wheel call), eventfd
 * injection by write() against io_uring (the batch threshold), and how
 * much of each CPU a busy thread gets (to place the agent, and to read the
 * figures on a shared machine). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent_bench.h"
#include "internal.h" /* heap and io_uring, for the micro-benchmarks */
#include "tsc.h"

/* ---- heap micro-benchmark (the heap-vs-wheel measurement) ----------- */

void heap_bench(void)
{
	static const uint32_t sizes[] = { 16, 256, 1024, 4096 };

	printf("heap: ns per re-key (random deadline) of one of N held slots\n");
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint32_t n = sizes[k], ops = 2000000;
		struct agent_heap h = {0};
		struct agent_slot *s = calloc(n, sizeof(*s));
		uint64_t seed = 42, t0, t1;

		agent_heap_reserve(&h, n);
		for (uint32_t i = 0; i < n; i++) {
			s[i].heap_idx = AGENT_HEAP_NONE;
			agent_heap_set(&h, &s[i], rnd(&seed) % 1000000);
		}
		t0 = mono_ns();
		for (uint32_t i = 0; i < ops; i++) {
			struct agent_slot *x = &s[rnd(&seed) % n];

			agent_heap_set(&h, x, rnd(&seed) % 1000000);
		}
		t1 = mono_ns();
		printf("  N=%-5u %.1f ns\n", n, (double)(t1 - t0) / ops);
		agent_heap_free(&h);
		free(s);
	}
}

/* How much of each CPU a spinning thread gets here: on a nested, shared
 * machine a CPU can lose half its time to the outer host, which no agent
 * can make up for. Printed so that the figures can be read. */
static void *spin_probe(void *arg)
{
	double *share = arg;
	uint64_t w0 = mono_ns(), c0 = thread_cpu_ns(), w1;

	while ((w1 = mono_ns()) - w0 < 200000000ull)
		;
	*share = (double)(thread_cpu_ns() - c0) / (double)(w1 - w0);
	return NULL;
}

/* Probes every CPU (up to 8); returns the best one. */
int probe_cpus(int verbose)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	double best = -1;
	int best_cpu = 0;

	if (verbose)
		printf("spin probe, share of a CPU a busy thread gets:");
	for (long cpu = 0; cpu < n && cpu < 8; cpu++) {
		pthread_attr_t attr;
		cpu_set_t set;
		pthread_t t;
		double share = 0;

		CPU_ZERO(&set);
		CPU_SET((int)cpu, &set);
		pthread_attr_init(&attr);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		if (pthread_create(&t, &attr, spin_probe, &share) == 0)
			pthread_join(t, NULL);
		pthread_attr_destroy(&attr);
		if (verbose)
			printf(" cpu%ld %.2f", cpu, share);
		if (share > best) {
			best = share;
			best_cpu = (int)cpu;
		}
	}
	if (verbose)
		printf("\n");
	return best_cpu;
}

/* ---- what a CPU takes from a thread that only spins --------------- */

struct hiccup_arg {
	uint64_t ns;        /* how long to spin */
	uint64_t tsc_khz;
	uint64_t gaps5, gaps10;  /* TSC reads more than 5 / 10 us apart */
	uint64_t late5_ns;  /* sum over gaps of (gap - 5 us): a deadline
			     * falling in a gap is >= 5 us late for that long */
	uint64_t max_ns;
};

static void *hiccup_main(void *arg)
{
	struct hiccup_arg *h = arg;
	uint64_t per_us = h->tsc_khz / 1000, t = tsc_now(), end, prev = t;

	end = t + h->ns / 1000 * per_us;
	while ((t = tsc_now()) < end) {
		uint64_t gap_ns = (t - prev) * 1000 / per_us;

		if (gap_ns >= 5000) {
			h->gaps5++;
			h->late5_ns += gap_ns - 5000;
			h->gaps10 += gap_ns >= 10000;
			if (gap_ns > h->max_ns)
				h->max_ns = gap_ns;
		}
		prev = t;
	}
	return NULL;
}

/* A thread pinned to @cpu at the caller's priority reads the TSC in a
 * loop for @ns: every gap is time the CPU gave to something else (another
 * task, an interrupt, the outer host). The share of time a deadline would
 * be >= 5 us late on this CPU whatever serves it bounds any p99 here. */
void hiccups(int cpu, uint64_t ns, uint64_t tsc_khz)
{
	struct hiccup_arg h = { .ns = ns, .tsc_khz = tsc_khz };
	pthread_attr_t attr;
	cpu_set_t set;
	pthread_t t;

	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	if (pthread_create(&t, &attr, hiccup_main, &h) == 0)
		pthread_join(t, NULL);
	pthread_attr_destroy(&attr);
	fprintf(stderr,
		"hiccups cpu%d over %.1f s: %llu gaps >= 5 us (%llu >= 10 us, "
		"longest %llu us); a deadline is >= 5 us late on this CPU "
		"%.3f%% of the time whatever serves it\n",
		cpu, (double)ns / 1e9, (unsigned long long)h.gaps5,
		(unsigned long long)h.gaps10,
		(unsigned long long)(h.max_ns / 1000),
		100.0 * (double)h.late5_ns / (double)ns);
}

/* ---- injection micro-benchmark (write() vs one io_uring submission) -- */

void inject_bench(void)
{
	static const uint32_t sizes[] = { 1, 2, 4, 8, 16, 64 };
	struct agent_uring *ring = NULL;
	int fds[64];
	uint64_t one = 1, v;

	for (int i = 0; i < 64; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (agent_uring_new(&ring) < 0)
		ring = NULL;
	printf("inject: ns per eventfd shot, N shots due together: write() vs "
	       "io_uring\n");
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint32_t n = sizes[k], rounds = 20000;
		uint64_t t0, t1, t2;

		t0 = mono_ns();
		for (uint32_t r = 0; r < rounds; r++)
			for (uint32_t i = 0; i < n; i++)
				if (write(fds[i], &one, sizeof(one)) < 0)
					break;
		t1 = mono_ns();
		for (uint32_t r = 0; ring && r < rounds; r++) {
			struct agent_uring_res res;

			agent_uring_write_ones(ring, fds, n, &res);
		}
		t2 = mono_ns();
		printf("  N=%-3u write %.0f ns, io_uring %s%.0f ns\n", n,
		       (double)(t1 - t0) / rounds / n, ring ? "" : "(none) ",
		       (double)(t2 - t1) / rounds / n);
		for (uint32_t i = 0; i < n; i++)
			if (read(fds[i], &v, sizeof(v)) < 0)
				v = 0;
	}
	agent_uring_destroy(ring);
	for (int i = 0; i < 64; i++)
		close(fds[i]);
}
