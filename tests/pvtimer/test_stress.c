/* SPDX-License-Identifier: MIT */
/* Stress: a guest thread arms, cancels and re-arms random deadlines on a few
 * slots following the fallback rule; a host thread services the area the way
 * an agent must (publish, pending pass, fire at deadline, pause with
 * handback). Checked: every live deadline fires exactly once (by the host or
 * by the guest's "hardware timer"), never before its deadline; cancelled
 * generations never fire; a fire or handback names a generation the guest
 * really wrote. STRESS_OPS sets the operation count (meson -Dstress_ops);
 * the environment variable EXITLESS_STRESS_OPS overrides it at run time
 * (the valgrind setup uses a small count, a benchmark run a huge one). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/check_main.h"
#include "../common/tsc.h"
#include "exitless/pvtimer.h"
#include "exitless/pvtimer_guest.h"

#ifndef STRESS_OPS
#define STRESS_OPS 200000
#endif
#define NSLOTS 4u
#define HIST 1024u /* generations remembered per slot */
#define RING 4096u

enum { KIND_NONE, KIND_ARM, KIND_CANCEL };
enum { EV_FIRE, EV_HANDBACK };

struct event {
	uint32_t slot, gen, type;
	uint64_t tsc;
};

/* Host -> guest "interrupts": single-producer single-consumer ring. */
static struct event ring[RING];
static uint32_t ring_head, ring_tail;

static uint64_t ticks_per_us;
static struct pvtimer_area *area;
static int host_stop;

static void push(uint32_t slot, uint32_t gen, uint32_t type, uint64_t tsc)
{
	uint32_t head = __atomic_load_n(&ring_head, __ATOMIC_RELAXED);

	while (head - __atomic_load_n(&ring_tail, __ATOMIC_ACQUIRE) >= RING)
		; /* guest is behind; it always drains */
	ring[head % RING] = (struct event){slot, gen, type, tsc};
	__atomic_store_n(&ring_head, head + 1, __ATOMIC_RELEASE);
}

/* ---- host: what an agent must do, minimal ---------------------------- */

struct held {
	uint32_t gen;
	uint64_t deadline;
	int valid;
};

static struct held held[NSLOTS];
static uint64_t host_fires, host_handbacks, host_pauses, late_max;

static void take(uint32_t s, uint64_t now)
{
	struct pvtimer_slot_snapshot snap;
	int err = pvtimer_host_read_slot(area, s, now, &snap);

	if (err == -EAGAIN) {
		pvtimer_host_requeue(area, s);
		return;
	}
	held[s].valid = err == 0 && snap.armed;
	if (!held[s].valid)
		return;
	held[s].gen = snap.gen;
	held[s].deadline = snap.deadline_tsc;
	pvtimer_host_ack(area, s, snap.gen);
}

static void pending_pass(void)
{
	struct pvtimer_pending_iter it;
	uint32_t s;

	pvtimer_host_pending_begin(area, &it);
	while (pvtimer_host_pending_next(area, &it, &s))
		take(s, tsc_now());
}

static void fire_due(void)
{
	for (uint32_t s = 0; s < NSLOTS; s++) {
		uint64_t now = tsc_now();

		if (!held[s].valid || now < held[s].deadline)
			continue;
		/* re-read: a cancel or re-arm since the pass wins */
		take(s, now);
		if (!held[s].valid || now < held[s].deadline)
			continue;
		pvtimer_host_fired(area, s, held[s].gen, now);
		push(s, held[s].gen, EV_FIRE, now);
		if (now - held[s].deadline > late_max)
			late_max = now - held[s].deadline;
		held[s].valid = 0;
		host_fires++;
	}
}

static void pause_and_hand_back(void)
{
	uint64_t until;

	pvtimer_host_deactivate(area);
	pending_pass(); /* the final pass after the fence */
	for (uint32_t s = 0; s < NSLOTS; s++) {
		if (!held[s].valid)
			continue;
		pvtimer_host_handback(area, s, held[s].gen);
		push(s, held[s].gen, EV_HANDBACK, tsc_now());
		held[s].valid = 0;
		host_handbacks++;
	}
	until = tsc_now() + 300 * ticks_per_us;
	while (tsc_now() < until)
		;
	pvtimer_host_activate(area, tsc_now() + 20 * ticks_per_us, tsc_now());
	host_pauses++;
}

static void *host_main(void *arg)
{
	uint64_t next_pause = tsc_now() + 5000 * ticks_per_us;

	(void)arg;
	pin_self(1);
	pvtimer_host_activate(area, tsc_now() + 20 * ticks_per_us, tsc_now());
	while (!__atomic_load_n(&host_stop, __ATOMIC_ACQUIRE)) {
		uint64_t now = tsc_now();

		/* promise first, then the pass the old promise covered */
		pvtimer_host_publish(area, now + 20 * ticks_per_us, now);
		pending_pass();
		fire_due();
		if (now >= next_pause) {
			pause_and_hand_back();
			next_pause = tsc_now() + 5000 * ticks_per_us;
		}
	}
	return NULL;
}

/* ---- guest ----------------------------------------------------------- */

struct gen_info {
	uint32_t gen;
	uint8_t kind;
	uint8_t fired;
	uint64_t deadline;
};

struct vslot {
	struct pvtimer_guest g;
	struct gen_info hist[HIST];
	int pv_live;    /* the host holds the current generation */
	int hw_live;    /* our "hardware timer" holds hw_deadline */
	uint64_t hw_deadline;
};

static struct vslot vs[NSLOTS];
static uint64_t guest_arms, guest_pv, guest_fallback[8], hw_fires, host_fired_seen;
static uint64_t superseded_fires, handbacks_seen;

static void record(struct vslot *v, uint32_t gen, uint8_t kind, uint64_t deadline)
{
	v->hist[gen % HIST] = (struct gen_info){gen, kind, 0, deadline};
}

static void on_event(const struct event *e)
{
	struct vslot *v = &vs[e->slot];
	struct gen_info *gi = &v->hist[e->gen % HIST];
	int current = e->gen == v->g.gen;

	ck_assert_uint_lt(e->slot, NSLOTS);
	ck_assert_msg(gi->gen == e->gen, "event for a generation never written");
	ck_assert_msg(gi->kind == KIND_ARM, "cancelled generation %u fired", e->gen);
	if (e->type == EV_HANDBACK) {
		handbacks_seen++;
		if (current && v->pv_live) {
			/* a halted guest re-arms on its hardware timer */
			int irq = pvtimer_guest_on_interrupt(&v->g);

			ck_assert(irq == PVTIMER_GUEST_IRQ_HANDBACK ||
				  irq == PVTIMER_GUEST_IRQ_EXPIRED);
			v->pv_live = 0;
			v->hw_live = 1;
			v->hw_deadline = gi->deadline;
		}
		return;
	}
	ck_assert_msg(!gi->fired, "generation %u fired twice", e->gen);
	ck_assert_msg(e->tsc >= gi->deadline, "fired %llu ticks early",
		      (unsigned long long)(gi->deadline - e->tsc));
	gi->fired = 1;
	host_fired_seen++;
	if (current && v->pv_live) {
		ck_assert_int_eq(pvtimer_guest_on_interrupt(&v->g),
				 PVTIMER_GUEST_IRQ_EXPIRED);
		v->pv_live = 0;
	} else {
		superseded_fires++; /* raced a cancel/re-arm: allowed, once */
	}
}

static void drain_events(void)
{
	uint32_t tail = __atomic_load_n(&ring_tail, __ATOMIC_RELAXED);

	while (tail != __atomic_load_n(&ring_head, __ATOMIC_ACQUIRE)) {
		on_event(&ring[tail % RING]);
		__atomic_store_n(&ring_tail, ++tail, __ATOMIC_RELEASE);
	}
}

static void fire_hw(void)
{
	uint64_t now = tsc_now();

	for (uint32_t s = 0; s < NSLOTS; s++)
		if (vs[s].hw_live && now >= vs[s].hw_deadline) {
			vs[s].hw_live = 0;
			hw_fires++;
		}
}

/* A live pv timer whose deadline has passed must fire before we replace it:
 * otherwise it was lost. Two seconds covers any preemption on a busy host. */
static void wait_if_due(struct vslot *v)
{
	uint64_t deadline = v->g.deadline_tsc;
	uint64_t give_up = tsc_now() + 2000000 * ticks_per_us;

	if (!v->pv_live || tsc_now() < deadline)
		return;
	while (v->pv_live) {
		drain_events();
		ck_assert_msg(tsc_now() < give_up, "timer lost: gen %u deadline passed 2 s ago",
			      v->g.gen);
	}
}

static void guest_arm(struct vslot *v, uint64_t deadline)
{
	uint32_t prev = v->g.gen;
	int r = pvtimer_guest_arm(&v->g, deadline);
	uint32_t cur = v->g.gen;

	guest_arms++;
	if (r == PVTIMER_GUEST_PV) {
		ck_assert_uint_eq(cur, prev + 1);
		record(v, cur, KIND_ARM, deadline);
		v->pv_live = 1;
		v->hw_live = 0;
		guest_pv++;
		return;
	}
	ck_assert_uint_lt(r, 8);
	guest_fallback[r]++;
	if (cur == prev + 2)
		record(v, prev + 1, KIND_ARM, deadline);
	if (cur != prev)
		record(v, cur, KIND_CANCEL, 0);
	v->pv_live = 0;
	v->hw_live = 1; /* the guest programs its own timer */
	v->hw_deadline = deadline;
}

static void guest_cancel(struct vslot *v)
{
	uint32_t prev = v->g.gen;

	pvtimer_guest_cancel(&v->g);
	if (v->g.gen != prev)
		record(v, v->g.gen, KIND_CANCEL, 0);
	v->pv_live = 0;
	v->hw_live = 0;
}

START_TEST(stress)
{
	PVTIMER_AREA_OPTS(o, .slot_count = NSLOTS, .features = PVTIMER_F_FIRED_TSC);
	uint64_t rng = 0x2545f4914f6cdd1dull, t0;
	const char *env = getenv("EXITLESS_STRESS_OPS");
	long ops = env ? strtol(env, NULL, 0) : STRESS_OPS;
	pthread_t host;

	ticks_per_us = tsc_per_us();
	o.margin_tsc = 2 * ticks_per_us;
	o.max_horizon_tsc = 1000000 * ticks_per_us;
	ck_assert_int_eq(pvtimer_area_new(&o, &area), 0);
	for (uint32_t s = 0; s < NSLOTS; s++)
		ck_assert_int_eq(pvtimer_guest_init(&vs[s].g, pvtimer_area_mem(area),
						    pvtimer_area_bytes(area), s, 0xec),
				 0);
	pin_self(0);
	ck_assert_int_eq(pthread_create(&host, NULL, host_main, NULL), 0);
	t0 = mono_ns();

	for (long op = 0; op < ops; op++) {
		uint64_t think;
		struct vslot *v;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		drain_events();
		fire_hw();
		v = &vs[rng % NSLOTS];
		wait_if_due(v);
		if ((rng >> 8) % 10 < 7)
			guest_arm(v, tsc_now() + ((rng >> 16) % (40 * ticks_per_us)));
		else
			guest_cancel(v);
		/* a vCPU does other work between timer operations */
		think = tsc_now() + (rng >> 40) % (4 * ticks_per_us);
		while (tsc_now() < think)
			fire_hw();
	}
	/* quiesce: every live timer must still fire */
	for (uint32_t s = 0; s < NSLOTS; s++)
		wait_if_due(&vs[s]);
	for (int busy = 1; busy;) {
		busy = 0;
		drain_events();
		fire_hw();
		for (uint32_t s = 0; s < NSLOTS; s++) {
			busy |= vs[s].hw_live;
			if (vs[s].pv_live) {
				busy = 1;
				wait_if_due(&vs[s]);
			}
		}
	}
	__atomic_store_n(&host_stop, 1, __ATOMIC_RELEASE);
	pthread_join(host, NULL);
	drain_events();

	printf("stress: %ld ops in %.2f s; arms %llu: pv %llu, fallback "
	       "disabled %llu past %llu stale %llu too_close %llu; host fires %llu "
	       "(%llu raced a re-arm), hw fires %llu, pauses %llu, handbacks %llu; "
	       "max lateness %.1f us\n",
	       ops, (double)(mono_ns() - t0) / 1e9,
	       (unsigned long long)guest_arms, (unsigned long long)guest_pv,
	       (unsigned long long)guest_fallback[PVTIMER_GUEST_FALLBACK_DISABLED],
	       (unsigned long long)guest_fallback[PVTIMER_GUEST_FALLBACK_PAST],
	       (unsigned long long)guest_fallback[PVTIMER_GUEST_FALLBACK_STALE],
	       (unsigned long long)guest_fallback[PVTIMER_GUEST_FALLBACK_TOO_CLOSE],
	       (unsigned long long)host_fires, (unsigned long long)superseded_fires,
	       (unsigned long long)hw_fires, (unsigned long long)host_pauses,
	       (unsigned long long)host_handbacks, (double)late_max / ticks_per_us);
	ck_assert_uint_eq(host_fires, host_fired_seen);
	ck_assert_uint_eq(host_handbacks, handbacks_seen);
	/* both paths must really have been exercised */
	ck_assert_uint_gt(guest_pv, 0);
	ck_assert_uint_gt(guest_fallback[PVTIMER_GUEST_FALLBACK_TOO_CLOSE], 0);
	ck_assert_uint_gt(host_fires, 0);
	pvtimer_area_destroy(area);
}
END_TEST

static Suite *stress_suite(void)
{
	Suite *s = suite_create("pvtimer-stress");
	TCase *tc = tcase_create("stress");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, stress);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(stress_suite)
