/* SPDX-License-Identifier: MIT */
/* idle-pingpong: a "vCPU" thread posts a request to a "device" thread on
 * another CPU and waits for its completion after an injected service time.
 * How it waits is the strategy under test: block at once (its CPU halts and
 * the wake-up crosses the hypervisor), poll 100 us then block, or poll for
 * the window libidlepoll's haltpoll or smart policy selects, then block.
 * Prints round-trip latency (mean, p50, p99) and the CPU the waiter burned
 * polling, per strategy and service time. Figures only; nothing passes or
 * fails on time. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <exitless/idlepoll.h>

#include "order.h"

enum strategy { S_BLOCK, S_FIXED100, S_HALTPOLL, S_SMART, S_COUNT };
static const char *const strategy_names[S_COUNT] = {
	"block", "fixed100", "haltpoll", "smart",
};

/* Service times in us; 0 is the random mix of MIX[]. */
static const unsigned int services[] = { 1, 20, 50, 0 };
static const unsigned int MIX[] = { 1, 20, 50, 500 };

struct channel {
	_Alignas(64) atomic_uint req;   /* written by the vCPU: request seq */
	atomic_ullong service_ns;       /* written by the vCPU before req */
	_Alignas(64) atomic_uint done;  /* written by the device: futex word */
	atomic_ullong done_ns;          /* written by the device before done */
	_Alignas(64) atomic_uint waiting; /* vCPU asleep on done */
	atomic_int stop;
};

struct run {
	enum strategy strategy;
	unsigned int service_us;
	double seconds;
	uint64_t halt_cost_ns;
	FILE *record;
	/* results */
	uint64_t *lat;
	size_t n, cap;
	uint64_t poll_ns, wall_ns;
};

static struct channel ch;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void futex_wait(atomic_uint *w, unsigned int old)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, old, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* The device: spin for a request (it is a busy device model), serve it for
 * its service time, complete it, and wake the vCPU only if it sleeps. */
static void *device_main(void *arg)
{
	unsigned int last = 0;

	(void)arg;
	for (;;) {
		unsigned int r;
		uint64_t start, svc;

		while ((r = atomic_load_explicit(&ch.req, memory_order_acquire)) == last) {
			if (atomic_load_explicit(&ch.stop, memory_order_relaxed))
				return NULL;
			cpu_relax();
		}
		last = r;
		svc = atomic_load_explicit(&ch.service_ns, memory_order_relaxed);
		start = idlepoll_now_ns();
		while (idlepoll_now_ns() - start < svc)
			cpu_relax();
		atomic_store_explicit(&ch.done_ns, idlepoll_now_ns(),
				      memory_order_relaxed);
		/* seq_cst store then load, against the waiter's seq_cst
		 * store of waiting then load of done: no lost wake-up. */
		atomic_store(&ch.done, r);
		if (atomic_load(&ch.waiting))
			futex_wake(&ch.done);
	}
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int push_lat(struct run *r, uint64_t v)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 65536;
		uint64_t *p = realloc(r->lat, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		r->lat = p;
		r->cap = cap;
	}
	r->lat[r->n++] = v;
	return 0;
}

/* Wait for completion @seq: poll up to @window ns, then block.
 * Returns 1 if the poll caught it; adds the polled time to *polled_ns. */
/* Poll for @window, doing the predictor's upkeep (idlepoll_work) in the
 * loop while it has some, then block; what the poll loop left undone is
 * done before blocking, as a guest would before its halt. */
static int wait_done(struct idlepoll_cpu *c, unsigned int seq, uint64_t t0,
		     uint64_t window, uint64_t *polled_ns)
{
	uint64_t now = t0;

	while (now - t0 < window) {
		if (atomic_load_explicit(&ch.done, memory_order_acquire) == seq) {
			*polled_ns += now - t0;
			return 1;
		}
		if (!c || idlepoll_work(c) <= 0)
			cpu_relax();
		now = idlepoll_now_ns();
	}
	*polled_ns += window;
	while (c && idlepoll_work(c) > 0)
		;
	atomic_store(&ch.waiting, 1);
	while (atomic_load(&ch.done) != seq)
		futex_wait(&ch.done, seq - 1);
	atomic_store(&ch.waiting, 0);
	return 0;
}

static void *vcpu_main(void *arg)
{
	struct run *r = arg;
	struct idlepoll_cpu *c = NULL;
	IDLEPOLL_OPTS(opts, .halt_cost_ns = r->halt_cost_ns);
	uint64_t start, end;
	unsigned int seq = atomic_load(&ch.req);

	if (r->strategy == S_HALTPOLL || r->strategy == S_SMART) {
		opts.policy = r->strategy == S_SMART ? IDLEPOLL_POLICY_SMART
						     : IDLEPOLL_POLICY_HALTPOLL;
		if (idlepoll_new(&opts, &c) < 0)
			return NULL;
	}
	start = idlepoll_now_ns();
	end = start + (uint64_t)(r->seconds * 1e9);
	for (;;) {
		uint64_t svc_us = r->service_us ? r->service_us
						: MIX[rng_next() % 4];
		uint64_t t0, t1, w, d;
		int polled;

		atomic_store_explicit(&ch.service_ns, svc_us * 1000,
				      memory_order_relaxed);
		t0 = idlepoll_now_ns();
		if (t0 >= end)
			break;
		atomic_store_explicit(&ch.req, ++seq, memory_order_release);
		switch (r->strategy) {
		case S_BLOCK:
			w = 0;
			break;
		case S_FIXED100:
			w = 100000;
			break;
		default:
			w = idlepoll_select(c, t0, IDLEPOLL_NO_TIMER);
		}
		polled = wait_done(c, seq, t0, w, &r->poll_ns);
		t1 = idlepoll_now_ns();
		d = atomic_load_explicit(&ch.done_ns, memory_order_relaxed) - t0;
		if (c)
			idlepoll_reflect(c, d, polled);
		if (r->record)
			fprintf(r->record, "%" PRIu64 "\n", d);
		if (push_lat(r, t1 - t0) < 0)
			break;
	}
	r->wall_ns = idlepoll_now_ns() - start;
	idlepoll_destroy(c);
	return NULL;
}

static int spawn(pthread_t *t, int cpu, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	cpu_set_t set;
	int err;

	pthread_attr_init(&attr);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* Set in the attributes: a thread inherits its creator's affinity. */
	pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	err = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return -err;
}

static int run_one(struct run *r, int vcpu_cpu, int dev_cpu)
{
	pthread_t dev, vcpu;
	int err;

	atomic_store(&ch.stop, 0);
	err = spawn(&dev, dev_cpu, device_main, NULL);
	if (err < 0)
		return err;
	err = spawn(&vcpu, vcpu_cpu, vcpu_main, r);
	if (err == 0)
		pthread_join(vcpu, NULL);
	atomic_store(&ch.stop, 1);
	pthread_join(dev, NULL);
	if (err == 0 && r->n)
		order_sort_u64(r->lat, r->n);
	return err < 0 ? err : (r->n ? 0 : -EIO);
}

static double mean_of(const struct run *r)
{
	double s = 0;

	for (size_t i = 0; i < r->n; i++)
		s += (double)r->lat[i];
	return s / (double)r->n;
}

static uint64_t pct(const struct run *r, unsigned int p)
{
	size_t i = (r->n * p) / 100;

	return r->lat[i < r->n ? i : r->n - 1];
}

/* H for smart: what blocking adds, on average, to a 1 us round trip on
 * this machine. The mean, not the median: the cost model is an expectation
 * and the wake-up's long tail is part of what a halt costs. */
static uint64_t calibrate(int vcpu_cpu, int dev_cpu)
{
	struct run b = { .strategy = S_BLOCK, .service_us = 1, .seconds = 0.3 };
	struct run f = { .strategy = S_FIXED100, .service_us = 1, .seconds = 0.05 };
	uint64_t h = 20000;

	if (run_one(&b, vcpu_cpu, dev_cpu) == 0 &&
	    run_one(&f, vcpu_cpu, dev_cpu) == 0 && mean_of(&b) > mean_of(&f))
		h = (uint64_t)(mean_of(&b) - mean_of(&f));
	if (h < 5000)
		h = 5000;
	if (h > 1000000)
		h = 1000000;
	free(b.lat);
	free(f.lat);
	return h;
}

static void usage(FILE *out)
{
	fputs("usage: idle-pingpong [--seconds S] [--halt-cost NS] [--json]\n"
	      "                     [--record FILE]\n"
	      "\n"
	      "Round trips between a vCPU thread (CPU 0) and a device thread\n"
	      "(CPU 1) for each wait strategy (block, fixed100, haltpoll,\n"
	      "smart) and service time (1, 20, 50 us and a random mix of\n"
	      "1/20/50/500 us, printed as service 0).\n"
	      "  --seconds S     per strategy and service time (default 0.8)\n"
	      "  --halt-cost NS  H for smart (default: calibrated at start as\n"
	      "                  block mean - poll mean at 1 us service)\n"
	      "  --json          {\"runs\": [{\"strategy\", \"service_us\",\n"
	      "                  \"lat_mean_ns\", \"lat_p50_ns\", \"lat_p99_ns\",\n"
	      "                  \"poll_cpu\"}]}\n"
	      "  --record FILE   write every idle duration seen as a trace\n", out);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "halt-cost", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "record", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double seconds = 0.8;
	uint64_t halt_cost = 0;
	int json = 0, opt, first = 1, vcpu_cpu = 0, dev_cpu = 1;
	FILE *record = NULL;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			seconds = strtod(optarg, NULL);
			break;
		case 'H':
			halt_cost = strtoull(optarg, NULL, 0);
			break;
		case 'j':
			json = 1;
			break;
		case 'r':
			record = fopen(optarg, "w");
			if (!record) {
				perror(optarg);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (seconds <= 0 || seconds > 3600) {
		usage(stderr);
		return 2;
	}
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		fprintf(stderr, "idle-pingpong: one CPU only: both threads on CPU 0\n");
		dev_cpu = 0;
	}
	if (!halt_cost)
		halt_cost = calibrate(vcpu_cpu, dev_cpu);
	if (record)
		fprintf(record, "# idle-pingpong idle durations (ns), all "
			"strategies and service times in order\n");
	if (json) {
		fprintf(stderr, "idle-pingpong: H = %" PRIu64 " ns\n", halt_cost);
		printf("{\"runs\": [");
	} else
		printf("# H = %" PRIu64 " ns; service 0 = mix of 1/20/50/500 us\n"
		       "%-9s %7s %9s %12s %11s %11s %9s\n", halt_cost,
		       "strategy", "service", "rounds", "lat_mean_ns",
		       "lat_p50_ns", "lat_p99_ns", "poll_cpu");
	for (size_t si = 0; si < sizeof(services) / sizeof(services[0]); si++) {
		for (int s = 0; s < S_COUNT; s++) {
			struct run r = { .strategy = (enum strategy)s,
					 .service_us = services[si],
					 .seconds = seconds,
					 .halt_cost_ns = halt_cost,
					 .record = record };
			double cpu;
			int err = run_one(&r, vcpu_cpu, dev_cpu);

			if (err < 0) {
				fprintf(stderr, "idle-pingpong: %s: %s\n",
					strategy_names[s], strerror(-err));
				return 1;
			}
			cpu = (double)r.poll_ns / (double)r.wall_ns;
			if (json)
				printf("%s\n  {\"strategy\": \"%s\", \"service_us\": %u, "
				       "\"lat_mean_ns\": %.0f, \"lat_p50_ns\": %" PRIu64
				       ", \"lat_p99_ns\": %" PRIu64 ", \"poll_cpu\": %.4f}",
				       first ? "" : ",", strategy_names[s],
				       r.service_us, mean_of(&r), pct(&r, 50),
				       pct(&r, 99), cpu);
			else
				printf("%-9s %7u %9zu %12.0f %11" PRIu64 " %11" PRIu64
				       " %9.4f\n", strategy_names[s], r.service_us,
				       r.n, mean_of(&r), pct(&r, 50), pct(&r, 99), cpu);
			fflush(stdout);
			first = 0;
			free(r.lat);
		}
	}
	if (json)
		printf("\n]}\n");
	if (record)
		fclose(record);
	return 0;
}
