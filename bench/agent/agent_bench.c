/* SPDX-License-Identifier: MIT */
/* agent-bench: the timer agent (dedicated and adaptive) against one timerfd
 * per vCPU thread, on the same random deadlines, in one run. Prints figures;
 * never passes or fails on time. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <exitless/agent.h>
#include <exitless/pvtimer.h>
#include <exitless/pvtimer_guest.h>

#include "internal.h" /* heap and io_uring, for the micro-benchmarks */
#include "tsc.h"

#define MAX_SAMPLES (8u << 20)
#define MIN_DEADLINE_NS 10000ull
#define MAX_DEADLINE_NS 10000000ull

struct cfg {
	uint32_t slots[8];
	uint32_t nslots;
	uint64_t duration_ns;
	uint32_t reps;
	uint32_t guest_threads;
	int json;
	int pin;
	int heap;
	int agent_cpu; /* -1: pick one that is not vcpu_cpu */
	int vcpu_cpu;
	int timerfd_cpu; /* -1: vcpu_cpu */
	int fifo;        /* SCHED_FIFO for the adaptive agent */
	uint64_t sleep_sweep_us[8];
	uint64_t spin_sweep_us[8];
	uint32_t nsweep;
};

struct result {
	const char *impl;
	const char *mode;
	uint64_t max_sleep_us;
	uint64_t spin_us;
	uint32_t slots;
	uint64_t timers;
	double p50, p99, p999, max;
	double timers_per_s;
	double cpu_ns_per_timer;
	double agent_cpu;
	double fallback_rate;
};

/* ---- time ---------------------------------------------------------- */

static uint64_t khz;

static uint64_t tsc(void)
{
	return tsc_now();
}

static void calibrate(void)
{
	khz = tsc_per_us() * 1000;
}

static uint64_t ns2tsc(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * khz / 1000000u);
}

static uint64_t tsc2ns(uint64_t t)
{
	return (uint64_t)((unsigned __int128)t * 1000000u / khz);
}

static void nap(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t rand_deadline_ns(uint64_t *seed)
{
	return MIN_DEADLINE_NS + rnd(seed) % (MAX_DEADLINE_NS - MIN_DEADLINE_NS);
}

static void pin(int cpu)
{
	if (cpu >= 0)
		pin_self(cpu); /* best effort: a 1-CPU host runs unpinned */
}

/* ---- lateness samples ---------------------------------------------- */

static uint32_t *samples;
static uint64_t nsamples;

static void sample(uint64_t ns)
{
	uint64_t i = __atomic_fetch_add(&nsamples, 1, __ATOMIC_RELAXED);

	if (i < MAX_SAMPLES)
		samples[i] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void percentiles(struct result *r)
{
	uint64_t n = nsamples < MAX_SAMPLES ? nsamples : MAX_SAMPLES;

	if (!n)
		return;
	qsort(samples, n, sizeof(*samples), cmp_u32);
	r->p50 = samples[(n - 1) * 50 / 100];
	r->p99 = samples[(n - 1) * 99 / 100];
	r->p999 = samples[(n - 1) * 999 / 1000];
	r->max = samples[n - 1];
}

/* ---- agent runs: simulated guests following the fallback rule ------- */

struct bslot {
	struct pvtimer_guest g;
	uint64_t deadline; /* guest TSC of the outstanding timer */
	uint32_t state;    /* 0 idle, 1 pv outstanding, 2 hardware */
	uint32_t fired;    /* set by the agent thread */
};

struct arun {
	struct bslot *s;
	uint32_t first, count;
	uint64_t end;
	uint64_t seed;
	uint64_t arms, fallbacks, pv_done;
	uint64_t why[8]; /* fallbacks per PVTIMER_GUEST_FALLBACK_* */
	int cpu;
};

static int on_fire(void *ctx, uint32_t area, uint32_t slot, uint8_t vector)
{
	struct bslot *s = &((struct bslot *)ctx)[slot];
	uint64_t now = tsc();
	uint64_t dl = __atomic_load_n(&s->deadline, __ATOMIC_ACQUIRE);

	(void)area;
	(void)vector;
	sample(now > dl ? tsc2ns(now - dl) : 0);
	__atomic_store_n(&s->fired, 1, __ATOMIC_RELEASE);
	return 0;
}

/* One guest thread drives many slots: arm what is idle, notice fires, let
 * hardware-timer fallbacks expire. It naps between sweeps (a vCPU is idle
 * most of the time); the nap only delays re-arming, not lateness. */
static void *guest_main(void *arg)
{
	struct arun *r = arg;

	pin(r->cpu);
	while (tsc() < r->end) {
		uint64_t now = tsc();

		for (uint32_t i = r->first; i < r->first + r->count; i++) {
			struct bslot *s = &r->s[i];
			uint64_t dl;
			int why;

			if (s->state == 1 &&
			    __atomic_load_n(&s->fired, __ATOMIC_ACQUIRE)) {
				/* consume: classify as the guest's handler would */
				pvtimer_guest_on_interrupt(&s->g);
				s->state = 0;
				r->pv_done++;
			} else if (s->state == 2 && now >= s->deadline) {
				s->state = 0;
			}
			if (s->state)
				continue;
			dl = now + ns2tsc(rand_deadline_ns(&r->seed));
			__atomic_store_n(&s->fired, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&s->deadline, dl, __ATOMIC_RELEASE);
			r->arms++;
			why = pvtimer_guest_arm(&s->g, dl);
			if (why == PVTIMER_GUEST_PV) {
				s->state = 1;
			} else {
				r->why[why & 7]++;
				r->fallbacks++;
				s->state = 2;
			}
		}
		nap(20000);
	}
	return NULL;
}

static int run_agent(const struct cfg *c, uint32_t n, uint32_t mode,
		     uint64_t max_sleep_us, uint64_t spin_us, struct result *res)
{
	PVTIMER_AREA_OPTS(ao, .slot_count = n, .margin_tsc = ns2tsc(2000),
			  .max_horizon_tsc = ns2tsc(1000000000ull),
			  .tsc_khz = (uint32_t)khz);
	int vcpu_cpu = c->vcpu_cpu;
	AGENT_OPTS(o, .mode = mode, .max_sleep_ns = max_sleep_us * 1000,
		   .spin_threshold_ns = spin_us * 1000);
	struct pvtimer_area *area = NULL;
	struct agent *ag = NULL;
	struct bslot *s;
	struct agent_stats st = { .sz = sizeof(st) };
	struct arun *runs;
	pthread_t *th;
	uint32_t g = c->guest_threads < n ? c->guest_threads : n;
	uint64_t arms = 0, fb = 0, t0, t1, why[8] = { 0 };
	int rc;

	/* Only a sleeping agent may be FIFO: a spinning one would be
	 * throttled by the kernel's RT bandwidth limit (50 ms a second). */
	if (c->fifo && mode == AGENT_MODE_ADAPTIVE) {
		o.sched_policy = SCHED_FIFO;
		o.sched_priority = 1;
	}
	if (c->pin && c->agent_cpu >= 0) {
		o.cpu_policy = AGENT_CPU_FIXED;
		o.cpu = c->agent_cpu;
	} else if (c->pin) {
		o.cpu_policy = AGENT_CPU_PICK;
		o.vcpu_cpus = &vcpu_cpu;
		o.vcpu_cpu_count = 1;
	}
	rc = pvtimer_area_new(&ao, &area);
	if (rc)
		return rc;
	rc = agent_new(&o, &ag);
	if (rc == -ENODEV) { /* one CPU: run unpinned */
		o.cpu_policy = AGENT_CPU_ANY;
		rc = agent_new(&o, &ag);
	}
	if (rc)
		return rc;
	agent_attach_area(ag, area, NULL, NULL);
	s = calloc(n, sizeof(*s));
	runs = calloc(g, sizeof(*runs));
	th = calloc(g, sizeof(*th));
	for (uint32_t i = 0; i < n; i++) {
		struct agent_injector inj = { .kind = AGENT_INJ_CALLBACK,
					      .fn = on_fire, .ctx = s };

		pvtimer_guest_init(&s[i].g, pvtimer_area_mem(area),
				   pvtimer_area_bytes(area), i, 0xec);
		agent_bind_slot(ag, 0, i, &inj);
	}
	nsamples = 0;
	agent_start(ag);
	nap(20000000); /* first wake-up samples */
	t0 = mono_ns();
	for (uint32_t k = 0; k < g; k++) {
		runs[k] = (struct arun){
			.s = s, .first = k * n / g,
			.count = (k + 1) * n / g - k * n / g,
			.end = tsc() + ns2tsc(c->duration_ns),
			.seed = 0x9e3779b97f4a7c15ull ^ (k + 1) ^ ((uint64_t)n << 32),
			.cpu = c->pin ? vcpu_cpu : -1,
		};
		pthread_create(&th[k], NULL, guest_main, &runs[k]);
	}
	for (uint32_t k = 0; k < g; k++) {
		pthread_join(th[k], NULL);
		arms += runs[k].arms;
		fb += runs[k].fallbacks;
		for (int w = 0; w < 8; w++)
			why[w] += runs[k].why[w];
	}
	t1 = mono_ns();
	agent_get_stats(ag, &st);
	agent_destroy(ag);
	pvtimer_area_destroy(area);

	if (getenv("AGENT_BENCH_DEBUG"))
		fprintf(stderr, "fallbacks: past %llu far %llu stale %llu close %llu;"
			" promise: spin %llu ns, wake %llu ns (max overshoot %llu), "
			"late promises %llu of %llu passes\n",
			(unsigned long long)why[PVTIMER_GUEST_FALLBACK_PAST],
			(unsigned long long)why[PVTIMER_GUEST_FALLBACK_TOO_FAR],
			(unsigned long long)why[PVTIMER_GUEST_FALLBACK_STALE],
			(unsigned long long)why[PVTIMER_GUEST_FALLBACK_TOO_CLOSE],
			(unsigned long long)st.iter_bound_ns,
			(unsigned long long)st.wake_bound_ns,
			(unsigned long long)st.wake_overshoot_max_ns,
			(unsigned long long)st.promises_late,
			(unsigned long long)st.scans);
	*res = (struct result){
		.impl = "agent",
		.mode = mode == AGENT_MODE_DEDICATED ? "dedicated" : "adaptive",
		.max_sleep_us = mode == AGENT_MODE_ADAPTIVE ? max_sleep_us : 0,
		.spin_us = mode == AGENT_MODE_ADAPTIVE ? spin_us : 0,
		.slots = n,
		.timers = arms,
	};
	percentiles(res);
	res->timers_per_s = (double)arms * 1e9 / (double)(t1 - t0);
	res->cpu_ns_per_timer = st.fires ? (double)st.cpu_ns / (double)st.fires : 0;
	res->agent_cpu = (double)st.cpu_ns / (double)st.run_ns;
	res->fallback_rate = arms ? (double)fb / (double)arms : 0;
	free(s);
	free(runs);
	free(th);
	return 0;
}

/* ---- baseline: one timerfd per vCPU thread ------------------------- */

struct trun {
	uint64_t end_ns;
	uint64_t seed;
	uint64_t timers;
	uint64_t cpu_ns;
	int cpu;
};

static void *tfd_main(void *arg)
{
	struct trun *r = arg;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	uint64_t c0 = thread_cpu_ns(), cnt;

	pin(r->cpu);
	while (fd >= 0 && mono_ns() < r->end_ns) {
		uint64_t dl = mono_ns() + rand_deadline_ns(&r->seed), now;
		struct itimerspec its = {
			.it_value = { .tv_sec = (time_t)(dl / 1000000000ull),
				      .tv_nsec = (long)(dl % 1000000000ull) },
		};

		if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ||
		    read(fd, &cnt, sizeof(cnt)) != (ssize_t)sizeof(cnt))
			break;
		now = mono_ns();
		sample(now > dl ? now - dl : 0);
		r->timers++;
	}
	r->cpu_ns = thread_cpu_ns() - c0;
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int run_timerfd(const struct cfg *c, uint32_t n, struct result *res)
{
	struct trun *runs = calloc(n, sizeof(*runs));
	pthread_t *th = calloc(n, sizeof(*th));
	pthread_attr_t attr;
	uint64_t t0, t1, timers = 0, cpu = 0;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	nsamples = 0;
	t0 = mono_ns();
	for (uint32_t i = 0; i < n; i++) {
		runs[i] = (struct trun){ .end_ns = t0 + c->duration_ns,
					 .seed = 0x51ed27ull ^ (i + 1),
					 .cpu = !c->pin ? -1
						: c->timerfd_cpu >= 0 ? c->timerfd_cpu
								      : c->vcpu_cpu };
		pthread_create(&th[i], &attr, tfd_main, &runs[i]);
	}
	for (uint32_t i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		timers += runs[i].timers;
		cpu += runs[i].cpu_ns;
	}
	t1 = mono_ns();
	pthread_attr_destroy(&attr);
	*res = (struct result){ .impl = "timerfd", .slots = n, .timers = timers };
	percentiles(res);
	res->timers_per_s = (double)timers * 1e9 / (double)(t1 - t0);
	res->cpu_ns_per_timer = timers ? (double)cpu / (double)timers : 0;
	free(runs);
	free(th);
	return 0;
}

/* ---- heap micro-benchmark (the heap-vs-wheel measurement) ----------- */

static void heap_bench(void)
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
static int probe_cpus(int verbose)
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

static void inject_bench(void)
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
		for (uint32_t r = 0; ring && r < rounds; r++)
			agent_uring_write_ones(ring, fds, n);
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

/* ---- driver --------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median over repetitions, field by field. */
static void median_of(struct result *reps, uint32_t n, struct result *out)
{
	double v[16];

	*out = reps[0];
#define MED(f)                                                               \
	do {                                                                 \
		for (uint32_t i = 0; i < n; i++)                             \
			v[i] = (double)reps[i].f;                            \
		qsort(v, n, sizeof(double), cmp_d);                          \
		out->f = v[n / 2];                                           \
	} while (0)
	MED(p50);
	MED(p99);
	MED(p999);
	MED(max);
	MED(timers_per_s);
	MED(cpu_ns_per_timer);
	MED(agent_cpu);
	MED(fallback_rate);
#undef MED
}

static void print_text(const struct result *r, const struct result *base)
{
	char mode[32];

	if (r->max_sleep_us)
		snprintf(mode, sizeof(mode), "adapt/%llu:%llu",
			 (unsigned long long)r->max_sleep_us,
			 (unsigned long long)r->spin_us);
	else
		snprintf(mode, sizeof(mode), "%s", r->mode ? r->mode : "-");
	printf("%-8s %-16s %5u %8llu %9.0f %9.0f %9.0f %9.0f %9.0f %8.0f %6.3f %6.3f",
	       r->impl, mode, r->slots, (unsigned long long)r->timers,
	       r->p50, r->p99, r->p999, r->max, r->timers_per_s,
	       r->cpu_ns_per_timer, r->agent_cpu, r->fallback_rate);
	if (base && base != r && base->p99 > 0)
		printf("  p99 x%.2f cpu/timer x%.2f", r->p99 / base->p99,
		       base->cpu_ns_per_timer > 0
			       ? r->cpu_ns_per_timer / base->cpu_ns_per_timer
			       : 0);
	printf("\n");
}

static void print_json(const struct result *r, int first)
{
	printf("%s\n  {\"impl\": \"%s\", \"mode\": ", first ? "" : ",", r->impl);
	if (r->mode)
		printf("\"%s\"", r->mode);
	else
		printf("null");
	printf(", \"max_sleep_us\": %llu, \"spin_us\": %llu, "
	       "\"slots\": %u, \"timers\": %llu, "
	       "\"late_p50_ns\": %.0f, \"late_p99_ns\": %.0f, "
	       "\"late_p999_ns\": %.0f, \"late_max_ns\": %.0f, "
	       "\"timers_per_s\": %.0f, \"cpu_ns_per_timer\": %.0f, "
	       "\"agent_cpu\": %.4f, \"fallback_rate\": %.4f}",
	       (unsigned long long)r->max_sleep_us,
	       (unsigned long long)r->spin_us, r->slots,
	       (unsigned long long)r->timers, r->p50, r->p99, r->p999, r->max,
	       r->timers_per_s, r->cpu_ns_per_timer, r->agent_cpu,
	       r->fallback_rate);
}

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
	       "[--fifo (adaptive agent SCHED_FIFO)]\n");
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
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cfg c = { .slots = { 1, 16, 256, 1024 }, .nslots = 4,
			 .duration_ns = 1000000000ull, .reps = 1,
			 .guest_threads = 1, .pin = 1, .agent_cpu = -1, .vcpu_cpu = -1,
			 .timerfd_cpu = -1 };
	uint64_t tmp[8];
	struct result all[128];
	uint32_t nres = 0;
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
			{ AGENT_MODE_DEDICATED, 0, 0 },
			{ AGENT_MODE_ADAPTIVE, 1000, 200 },
		};
		uint32_t nones = 3, base = nres;

		for (uint32_t k = 0; k < c.nsweep; k++)
			if (c.sleep_sweep_us[k] && c.spin_sweep_us[k] &&
			    (c.sleep_sweep_us[k] != 1000 || c.spin_sweep_us[k] != 200))
				ones[nones++] = (struct one){
					AGENT_MODE_ADAPTIVE, c.sleep_sweep_us[k],
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
