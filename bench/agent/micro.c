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
