/* SPDX-License-Identifier: MIT */
/* agent-bench --hostile N: can one VM delay another's timers? One dedicated
 * agent serves an honest area (one slot, one simulated vCPU arming random
 * deadlines) and a hostile area of N slots. Each repetition measures the
 * honest slot's lateness first with the hostile area quiet, then with a
 * thread attacking it, and the figures are the medians over repetitions:
 * p50 and p99 alone, under attack, and their ratio (the target: p99 moves
 * by at most 2x at N = 255).
 *
 * The hostile slots, by index mod 8: 0, 4 re-arm in the past (a new
 * generation every round); 1, 5 hold the seqlock odd; 2, 6 arm and cancel
 * (valid changes, never parked); 3 arms far ahead within the horizon; 7
 * beyond it (rejected: a wake each). Every round also ORs every pending
 * bit of the area. The thread spins without pause, niced to 19 on the
 * honest vCPU's CPU (on a 2-CPU machine there is no other place for it:
 * the agent has the other). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <exitless/agent.h>
#include <exitless/pvtimer.h>
#include <exitless/pvtimer_guest.h>

#include "agent_bench.h"
#include "internal.h" /* the engine's seam (--every-turn) */
#include "tsc.h"

#define HONEST_MIN_NS 20000ull
#define HONEST_MAX_NS 2000000ull
#define HONEST_SAMPLES (1u << 20)

struct honest {
	struct pvtimer_guest g;
	uint64_t deadline; /* set by the vCPU, read by the callback */
	uint32_t fired;
	uint32_t n;        /* samples */
	uint32_t *late_ns; /* HONEST_SAMPLES */
	uint64_t arms, fallbacks;
	uint64_t end;
	uint64_t seed;
	int cpu;
};

struct hostile {
	char *mem;
	uint32_t slots;
	int cpu;
	int stop;
	uint64_t rounds;
	uint64_t shots;
};

static uint64_t ns2tsc(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * khz / 1000000u);
}

static uint64_t tsc2ns(uint64_t t)
{
	return (uint64_t)((unsigned __int128)t * 1000000u / khz);
}

static int honest_fire(void *ctx, uint32_t area, uint32_t slot, uint8_t vector)
{
	struct honest *h = ctx;
	uint64_t now = tsc_now(), dl = __atomic_load_n(&h->deadline,
						       __ATOMIC_ACQUIRE);
	(void)area;
	(void)slot;
	(void)vector;
	uint32_t i = __atomic_fetch_add(&h->n, 1, __ATOMIC_RELAXED);

	if (i < HONEST_SAMPLES)
		h->late_ns[i] = now > dl ? (uint32_t)tsc2ns(now - dl) : 0;
	__atomic_store_n(&h->fired, 1, __ATOMIC_RELEASE);
	return 0;
}

static int hostile_fire(void *ctx, uint32_t area, uint32_t slot, uint8_t vector)
{
	(void)area;
	(void)slot;
	(void)vector;
	__atomic_fetch_add(&((struct hostile *)ctx)->shots, 1, __ATOMIC_RELAXED);
	return 0;
}

static void nap(uint64_t ns)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ns };

	nanosleep(&ts, NULL);
}

/* One vCPU: arm, wait for the fire (or the hardware deadline), again. */
static void *honest_main(void *arg)
{
	struct honest *h = arg;

	if (h->cpu >= 0)
		pin_self(h->cpu);
	while (tsc_now() < h->end) {
		uint64_t d = HONEST_MIN_NS + rnd(&h->seed) %
						     (HONEST_MAX_NS - HONEST_MIN_NS);
		uint64_t dl = tsc_now() + ns2tsc(d), limit = dl + ns2tsc(50000000);

		__atomic_store_n(&h->fired, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&h->deadline, dl, __ATOMIC_RELEASE);
		h->arms++;
		if (pvtimer_guest_arm(&h->g, dl) != PVTIMER_GUEST_PV) {
			h->fallbacks++;
			while (tsc_now() < dl)
				nap(20000);
			continue;
		}
		while (!__atomic_load_n(&h->fired, __ATOMIC_ACQUIRE) &&
		       tsc_now() < limit)
			nap(20000);
		pvtimer_guest_on_interrupt(&h->g);
	}
	return NULL;
}

static void publish(struct pvtimer_abi_slot *s, uint32_t *seq, uint32_t *gen,
		    uint64_t dl, uint8_t flags)
{
	__atomic_store_n(&s->seq, *seq | 1u, __ATOMIC_RELAXED);
	__atomic_store_n(&s->arm_gen, ++*gen, __ATOMIC_RELEASE);
	__atomic_store_n(&s->deadline_tsc, dl, __ATOMIC_RELEASE);
	__atomic_store_n(&s->vector, 0xec, __ATOMIC_RELEASE);
	__atomic_store_n(&s->arm_flags, flags, __ATOMIC_RELEASE);
	*seq = (*seq | 1u) + 1;
	__atomic_store_n(&s->seq, *seq, __ATOMIC_RELEASE);
}

static void *hostile_main(void *arg)
{
	struct hostile *x = arg;
	const struct pvtimer_abi_header *hdr = (const void *)x->mem;
	struct pvtimer_abi_pending *p = (void *)(x->mem + hdr->pending_offset);
	uint32_t seq[PVTIMER_ABI_MAX_SLOTS] = { 0 }, gen[PVTIMER_ABI_MAX_SLOTS];
	uint32_t words = (x->slots + 63) / 64;

	if (x->cpu >= 0)
		pin_self(x->cpu);
	setpriority(PRIO_PROCESS, 0, 19);
	for (uint32_t i = 0; i < x->slots; i++)
		gen[i] = 1000;
	while (!__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE)) {
		uint64_t now = tsc_now();

		for (uint32_t i = 0; i < x->slots; i++) {
			struct pvtimer_abi_slot *s =
				(void *)(x->mem + hdr->slots_offset +
					 (size_t)i * hdr->slot_stride);

			switch (i % 8) {
			case 0:
			case 4:
				publish(s, &seq[i], &gen[i], now - 1000,
					PVTIMER_ARM_ARMED);
				break;
			case 1:
			case 5:
				__atomic_store_n(&s->seq, seq[i] | 1u,
						 __ATOMIC_RELEASE);
				break;
			case 2:
			case 6:
				publish(s, &seq[i], &gen[i],
					(x->rounds & 1) ? 0 : now + ns2tsc(300000),
					(x->rounds & 1) ? 0 : PVTIMER_ARM_ARMED);
				break;
			case 3:
				publish(s, &seq[i], &gen[i],
					now + ns2tsc(500000000), PVTIMER_ARM_ARMED);
				break;
			default:
				publish(s, &seq[i], &gen[i], now + (1ull << 60),
					PVTIMER_ARM_ARMED);
				break;
			}
		}
		for (uint32_t w = 0; w < words; w++)
			__atomic_fetch_or(&p->words[w], ~0ull, __ATOMIC_SEQ_CST);
		__atomic_fetch_or(&p->summary, ~0ull, __ATOMIC_SEQ_CST);
		x->rounds++;
	}
	/* leave every slot cancelled and settled, so that the next "alone"
	 * phase is alone (a slot left mid-write costs some agents a read
	 * per pass for ever) */
	for (uint32_t i = 0; i < x->slots; i++)
		publish((void *)(x->mem + hdr->slots_offset +
				 (size_t)i * hdr->slot_stride),
			&seq[i], &gen[i], 0, 0);
	for (uint32_t w = 0; w < words; w++)
		__atomic_fetch_or(&p->words[w], ~0ull, __ATOMIC_SEQ_CST);
	__atomic_fetch_or(&p->summary, ~0ull, __ATOMIC_SEQ_CST);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct phase {
	double p50, p99, fallback, timers;
};

/* Run the honest vCPU for @ns; the hostile thread runs if @x. */
static void phase(struct honest *h, struct hostile *x, uint64_t ns,
		  struct phase *out)
{
	pthread_t th, xt;
	uint32_t n;

	__atomic_store_n(&h->n, 0, __ATOMIC_RELAXED);
	h->arms = h->fallbacks = 0;
	h->end = tsc_now() + ns2tsc(ns);
	if (x) {
		x->stop = 0;
		pthread_create(&xt, NULL, hostile_main, x);
	}
	pthread_create(&th, NULL, honest_main, h);
	pthread_join(th, NULL);
	if (x) {
		__atomic_store_n(&x->stop, 1, __ATOMIC_RELEASE);
		pthread_join(xt, NULL);
		nap(20000000); /* the agent takes the cancels */
	}
	n = __atomic_load_n(&h->n, __ATOMIC_ACQUIRE);
	if (n > HONEST_SAMPLES)
		n = HONEST_SAMPLES;
	qsort(h->late_ns, n, sizeof(*h->late_ns), cmp_u32);
	out->p50 = n ? h->late_ns[(n - 1) / 2] : 0;
	out->p99 = n ? h->late_ns[(n - 1) * 99 / 100] : 0;
	out->timers = n;
	out->fallback = h->arms ? (double)h->fallbacks / (double)h->arms : 0;
}

static double med(double *v, uint32_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return v[n / 2];
}

int hostile_bench(const struct cfg *c, uint32_t nhostile)
{
	PVTIMER_AREA_OPTS(ho, .slot_count = 1, .margin_tsc = ns2tsc(2000),
			  .max_horizon_tsc = ns2tsc(1000000000ull),
			  .tsc_khz = (uint32_t)khz);
	PVTIMER_AREA_OPTS(xo, .slot_count = nhostile, .margin_tsc = ns2tsc(2000),
			  .max_horizon_tsc = ns2tsc(1000000000ull),
			  .tsc_khz = (uint32_t)khz);
	PVAGENT_OPTS(o, .mode = PVAGENT_MODE_DEDICATED);
	struct pvtimer_area *ha = NULL, *xa = NULL;
	struct pvagent *ag = NULL;
	struct honest h = { .seed = 0x9e3779b97f4a7c15ull, .cpu = -1 };
	struct hostile x = { .slots = nhostile, .cpu = -1 };
	struct pvagent_stats st = { .sz = sizeof(st) };
	struct phase pa[16], px[16];
	double v[6][16];
	uint32_t reps = c->reps < 3 ? 3 : c->reps;
	uint64_t t0, t1;

	if (c->pin && c->agent_cpu >= 0) {
		o.cpu_policy = PVAGENT_CPU_FIXED;
		o.cpu = c->agent_cpu;
		h.cpu = x.cpu = c->vcpu_cpu;
	}
	h.late_ns = calloc(HONEST_SAMPLES, sizeof(*h.late_ns));
	if (!h.late_ns || pvtimer_area_new(&ho, &ha) || pvtimer_area_new(&xo, &xa) ||
	    pvagent_new(&o, &ag))
		return 1;
	x.mem = pvtimer_area_mem(xa);
	pvagent_attach_area(ag, ha, NULL, NULL);
	pvagent_attach_area(ag, xa, NULL, NULL);
	{
		struct pvagent_injector hi = { .kind = PVAGENT_INJ_CALLBACK,
					     .fn = honest_fire, .ctx = &h };
		struct pvagent_injector xi = { .kind = PVAGENT_INJ_CALLBACK,
					     .fn = hostile_fire, .ctx = &x };

		pvagent_bind_slot(ag, 0, 0, &hi);
		for (uint32_t i = 0; i < nhostile; i++)
			pvagent_bind_slot(ag, 1, i, &xi);
	}
	pvtimer_guest_init(&h.g, pvtimer_area_mem(ha), pvtimer_area_bytes(ha), 0,
			   0xec);
	ag->pass_every_turn = c->every_turn != 0;
	pvagent_start(ag);
	nap(20000000);
	printf("hostile: honest slot (area 0) next to %u hostile slots (area 1), "
	       "one dedicated agent on cpu %d, vCPU threads on cpu %d;\n"
	       "  %u reps of %llu ms alone then %llu ms attacked; deadlines "
	       "20us-2ms; lateness at injection, ns\n",
	       nhostile, c->agent_cpu, c->vcpu_cpu, reps,
	       (unsigned long long)(c->duration_ns / 1000000),
	       (unsigned long long)(c->duration_ns / 1000000));
	t0 = mono_ns();
	for (uint32_t r = 0; r < reps; r++) {
		phase(&h, NULL, c->duration_ns, &pa[r]);
		phase(&h, &x, c->duration_ns, &px[r]);
		printf("  rep %u: alone p50 %.0f p99 %.0f fb %.3f (%.0f) | "
		       "attacked p50 %.0f p99 %.0f fb %.3f (%.0f)\n", r,
		       pa[r].p50, pa[r].p99, pa[r].fallback, pa[r].timers,
		       px[r].p50, px[r].p99, px[r].fallback, px[r].timers);
		v[0][r] = pa[r].p50;
		v[1][r] = pa[r].p99;
		v[2][r] = px[r].p50;
		v[3][r] = px[r].p99;
		v[4][r] = pa[r].fallback;
		v[5][r] = px[r].fallback;
	}
	t1 = mono_ns();
	pvagent_get_stats(ag, &st);
	pvagent_destroy(ag);
	{
		double a50 = med(v[0], reps), a99 = med(v[1], reps);
		double x50 = med(v[2], reps), x99 = med(v[3], reps);

		printf("%-9s %9s %9s %9s\n", "honest", "p50_ns", "p99_ns",
		       "fallback");
		printf("%-9s %9.0f %9.0f %9.3f\n", "alone", a50, a99,
		       med(v[4], reps));
		printf("%-9s %9.0f %9.0f %9.3f\n", "attacked", x50, x99,
		       med(v[5], reps));
		printf("ratio p50 %.2f p99 %.2f (medians of %u reps)\n",
		       a50 > 0 ? x50 / a50 : 0, a99 > 0 ? x99 / a99 : 0, reps);
	}
	printf("agent over the run (%.1f s): passes %llu, reads %llu, fires %llu, "
	       "hostile shots %llu, backoffs %llu, withdrawals %llu,\n"
	       "  budget stops %llu, parked bits %llu, reject wakes %llu, "
	       "past arms %llu, torn %llu, promises late %llu, "
	       "spin promise %llu ns\n",
	       (double)(t1 - t0) / 1e9, (unsigned long long)st.scans,
	       (unsigned long long)st.slot_reads, (unsigned long long)st.fires,
	       (unsigned long long)x.shots, (unsigned long long)st.backoffs,
	       (unsigned long long)st.withdrawals,
	       (unsigned long long)st.budget_stops,
	       (unsigned long long)st.parked_pending,
	       (unsigned long long)st.reject_wakes,
	       (unsigned long long)st.past_arms,
	       (unsigned long long)st.torn_reads,
	       (unsigned long long)st.promises_late,
	       (unsigned long long)st.iter_bound_ns);
	pvtimer_area_destroy(xa);
	pvtimer_area_destroy(ha);
	free(h.late_ns);
	return 0;
}
