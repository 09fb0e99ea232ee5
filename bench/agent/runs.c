/* SPDX-License-Identifier: MIT */
/* agent-bench's runs: the same random deadlines served by the agent (for
 * simulated guests that follow the pvtimer fallback rule) and by one
 * timerfd per vCPU thread, each recording how late every timer fired.
 * Lateness is measured here and only here, so both sides pay the same. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <exitless/agent.h>
#include <exitless/pvtimer.h>
#include <exitless/pvtimer_guest.h>

#include "agent_bench.h"
#include "internal.h" /* the engine's fire-point diagnostics */
#include "tsc.h"

#define MIN_DEADLINE_NS 10000ull
#define MAX_DEADLINE_NS 10000000ull

/* ---- time ---------------------------------------------------------- */

uint64_t khz;

static uint64_t tsc(void)
{
	return tsc_now();
}

void calibrate(void)
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

uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rnd(uint64_t *s)
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

uint32_t *samples;
static uint64_t nsamples;

/* A sample is ns (up to ~2.1 s) with the top bit set when the breakdown
 * below put the fire's lateness on a stall of the agent thread. */
#define SAMPLE_STALL 0x80000000u
#define SAMPLE_NS 0x7fffffffu

static void sample_flagged(uint64_t ns, uint32_t flag)
{
	uint64_t i = __atomic_fetch_add(&nsamples, 1, __ATOMIC_RELAXED);

	if (i < MAX_SAMPLES)
		samples[i] = (ns > SAMPLE_NS ? SAMPLE_NS : (uint32_t)ns) | flag;
}

static void sample(uint64_t ns)
{
	sample_flagged(ns, 0);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a & SAMPLE_NS;
	uint32_t y = *(const uint32_t *)b & SAMPLE_NS;

	return x < y ? -1 : x > y;
}

static void percentiles(struct result *r)
{
	uint64_t n = nsamples < MAX_SAMPLES ? nsamples : MAX_SAMPLES, m = 0;

	if (!n)
		return;
	qsort(samples, n, sizeof(*samples), cmp_u32);
	r->p50 = samples[(n - 1) * 50 / 100] & SAMPLE_NS;
	r->p99 = samples[(n - 1) * 99 / 100] & SAMPLE_NS;
	r->p999 = samples[(n - 1) * 999 / 1000] & SAMPLE_NS;
	r->max = samples[n - 1] & SAMPLE_NS;
	/* p99 of the fires not put on a stall: what the agent gives on a
	 * CPU nothing else takes */
	for (uint64_t i = 0; i < n; i++)
		m += !(samples[i] & SAMPLE_STALL);
	r->p99_nostall = r->p99;
	for (uint64_t i = 0, k = 0; i < n && m; i++) {
		if (samples[i] & SAMPLE_STALL)
			continue;
		if (k++ == (m - 1) * 99 / 100) {
			r->p99_nostall = samples[i] & SAMPLE_NS;
			break;
		}
	}
}

/* ---- what the host took from the agent thread ---------------------- */

/* The agent thread's id: the one named "exitless-agent" (agent.c). */
static int agent_tid(void)
{
	char path[320], comm[32];
	int found = -1;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) &&
		    !strncmp(comm, "exitless-agent", 14))
			found = atoi(e->d_name);
		fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/* Run delay (ns waiting on a run queue) and involuntary switches of
 * thread @tid, and the steal time of @cpu (ns). */
static void host_take(int tid, int cpu, struct host_take *t)
{
	char path[64], line[256];
	FILE *f;

	*t = (struct host_take){ 0 };
	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
	if (tid > 0 && (f = fopen(path, "r"))) {
		unsigned long long run, wait;

		if (fscanf(f, "%llu %llu", &run, &wait) == 2)
			t->run_delay_ns = wait;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	if (tid > 0 && (f = fopen(path, "r"))) {
		while (fgets(line, sizeof(line), f))
			sscanf(line, "nonvoluntary_ctxt_switches: %llu",
			       (unsigned long long *)&t->nvcsw);
		fclose(f);
	}
	if (cpu >= 0 && (f = fopen("/proc/stat", "r"))) {
		char want[16];
		long hz = sysconf(_SC_CLK_TCK);

		snprintf(want, sizeof(want), "cpu%d ", cpu);
		while (fgets(line, sizeof(line), f)) {
			unsigned long long v[8];

			if (strncmp(line, want, strlen(want)) ||
			    sscanf(line + strlen(want),
				   "%llu %llu %llu %llu %llu %llu %llu %llu",
				   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
				   &v[6], &v[7]) != 8)
				continue;
			t->irq_ns = (v[5] + v[6]) * 1000000000ull / (uint64_t)hz;
			t->steal_ns = v[7] * 1000000000ull / (uint64_t)hz;
		}
		fclose(f);
	}
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

/* ---- where a late fire's time went ---------------------------------
 * The callback runs on the agent thread, inside the fire point, so it may
 * read the engine's diagnostics and the slot's first-read time directly.
 * A fire later than BREAK_NS is split into: read (the deadline had passed
 * before the agent first read the arm), wait (from max(deadline, read) to
 * the start of the fire point that fired it) and batch (from that start
 * to this injection: the re-reads and injections of others due with it).
 * Its cause is the largest part; a wait is a stall when the gap between
 * the two fire points around the deadline lasted over STALL_NS plus
 * READ_ALLOW_NS per slot read in it (work cannot explain it: the thread
 * was descheduled or its CPU taken; hiccups() measures how often that
 * happens to a thread that only spins), else the pass. */
#define BREAK_NS 5000ull
#define STALL_NS 3000ull
/* what one slot read (a pass's or a fire's re-read, its fire and
 * callback included) may add to a gap before the rest counts as a stall */
#define READ_ALLOW_NS 1000ull

struct breakdown breakdown;
static struct pvagent *diag_agent;

/* @return SAMPLE_STALL when the fire's lateness is a stall's. */
static uint32_t diagnose(uint32_t slot, uint64_t dl, uint64_t now)
{
	const struct pvagent *a = diag_agent;
	const struct agent_slot *as;
	uint64_t due, rd, wait, batch, gap, reads;
	struct breakdown *b = &breakdown;

	if (!a || now <= dl || tsc2ns(now - dl) < BREAK_NS)
		return 0;
	as = &a->areas[0].slots[slot];
	due = as->due_host > dl ? as->due_host : dl;
	rd = due - dl;
	wait = a->diag.fp_start > due ? a->diag.fp_start - due : 0;
	batch = now > a->diag.fp_start ? now - a->diag.fp_start : 0;
	gap = a->diag.fp_start - a->diag.fp_prev_start;
	reads = a->diag.fp_reads - a->diag.fp_prev_reads;
	b->late++;
	b->read_ns += tsc2ns(rd);
	b->wait_ns += tsc2ns(wait);
	b->batch_ns += tsc2ns(batch);
	if (rd >= wait && rd >= batch)
		b->by_read++;
	else if (batch >= wait)
		b->by_batch++;
	else if (tsc2ns(gap) > STALL_NS + reads * READ_ALLOW_NS) {
		b->by_stall++;
		if (tsc2ns(gap) > b->gap_max_ns)
			b->gap_max_ns = tsc2ns(gap);
		return SAMPLE_STALL;
	} else {
		b->by_pass++;
	}
	return 0;
}

static int on_fire(void *ctx, uint32_t area, uint32_t slot, uint8_t vector)
{
	struct bslot *s = &((struct bslot *)ctx)[slot];
	uint64_t now = tsc();
	uint64_t dl = __atomic_load_n(&s->deadline, __ATOMIC_ACQUIRE);

	(void)area;
	(void)vector;
	sample_flagged(now > dl ? tsc2ns(now - dl) : 0, diagnose(slot, dl, now));
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

int run_agent(const struct cfg *c, uint32_t n, uint32_t mode,
	      uint64_t max_sleep_us, uint64_t spin_us, struct result *res)
{
	PVTIMER_AREA_OPTS(ao, .slot_count = n, .margin_tsc = ns2tsc(2000),
			  .max_horizon_tsc = ns2tsc(1000000000ull),
			  .tsc_khz = (uint32_t)khz);
	int vcpu_cpu = c->vcpu_cpu;
	PVAGENT_OPTS(o, .mode = mode, .max_sleep_ns = max_sleep_us * 1000,
		   .spin_threshold_ns = spin_us * 1000);
	struct pvtimer_area *area = NULL;
	struct pvagent *ag = NULL;
	struct bslot *s;
	struct pvagent_stats st = { .sz = sizeof(st) };
	struct arun *runs;
	pthread_t *th;
	uint32_t g = c->guest_threads < n ? c->guest_threads : n;
	uint64_t arms = 0, fb = 0, t0, t1, why[8] = { 0 };
	struct host_take take0, take1;
	int rc, tid;

	/* Only a sleeping agent may be FIFO: a spinning one would be
	 * throttled by the kernel's RT bandwidth limit (50 ms a second). */
	if (c->fifo && mode == PVAGENT_MODE_ADAPTIVE) {
		o.sched_policy = SCHED_FIFO;
		o.sched_priority = 1;
	}
	if (c->pin && c->agent_cpu >= 0) {
		o.cpu_policy = PVAGENT_CPU_FIXED;
		o.cpu = c->agent_cpu;
	} else if (c->pin) {
		o.cpu_policy = PVAGENT_CPU_PICK;
		o.vcpu_cpus = &vcpu_cpu;
		o.vcpu_cpu_count = 1;
	}
	rc = pvtimer_area_new(&ao, &area);
	if (rc)
		return rc;
	rc = pvagent_new(&o, &ag);
	if (rc == -ENODEV) { /* one CPU: run unpinned */
		o.cpu_policy = PVAGENT_CPU_ANY;
		rc = pvagent_new(&o, &ag);
	}
	if (rc)
		return rc;
	pvagent_attach_area(ag, area, NULL, NULL);
	s = calloc(n, sizeof(*s));
	runs = calloc(g, sizeof(*runs));
	th = calloc(g, sizeof(*th));
	for (uint32_t i = 0; i < n; i++) {
		struct pvagent_injector inj = { .kind = PVAGENT_INJ_CALLBACK,
					      .fn = on_fire, .ctx = s };

		pvtimer_guest_init(&s[i].g, pvtimer_area_mem(area),
				   pvtimer_area_bytes(area), i, 0xec);
		pvagent_bind_slot(ag, 0, i, &inj);
	}
	nsamples = 0;
	breakdown = (struct breakdown){ 0 };
	diag_agent = ag;
	ag->pass_every_turn = c->every_turn != 0;
	pvagent_start(ag);
	tid = agent_tid();
	host_take(tid, c->agent_cpu, &take0);
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
	pvagent_get_stats(ag, &st);
	host_take(tid, c->agent_cpu, &take1);
	pvagent_stop(ag); /* joined: its diagnostics are ours to read */
	breakdown.busy_ns = tsc2ns(ag->diag.busy_tsc);
	breakdown.takes = ag->diag.takes;
	pvagent_destroy(ag);
	diag_agent = NULL;
	breakdown.take.run_delay_ns = take1.run_delay_ns - take0.run_delay_ns;
	breakdown.take.nvcsw = take1.nvcsw - take0.nvcsw;
	breakdown.take.steal_ns = take1.steal_ns - take0.steal_ns;
	breakdown.take.irq_ns = take1.irq_ns - take0.irq_ns;
	pvtimer_area_destroy(area);
	breakdown.fires = st.fires;
	breakdown.scans = st.scans;
	breakdown.publishes = st.publishes;
	breakdown.promises_late = st.promises_late;
	breakdown.run_ns = st.run_ns;
	if (c->breakdown)
		print_breakdown(n, mode, &breakdown);

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
		.mode = mode == PVAGENT_MODE_DEDICATED ? "dedicated" : "adaptive",
		.max_sleep_us = mode == PVAGENT_MODE_ADAPTIVE ? max_sleep_us : 0,
		.spin_us = mode == PVAGENT_MODE_ADAPTIVE ? spin_us : 0,
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

int run_timerfd(const struct cfg *c, uint32_t n, struct result *res)
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
