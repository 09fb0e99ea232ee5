/* SPDX-License-Identifier: MIT */
/* Paced passes (issue 10), white-box against the library's internal
 * build: a dedicated agent whose guest re-arms and cancels a slot in a
 * tight loop passes only when it renews its promise (or a parking ends),
 * not on every turn of its loop; it still reads every arm in time (none
 * read past its deadline unless it broke a promise or a turn outlasted
 * the margin, the only two ways spec §5 allows) and fires every timer
 * that is left armed, never early. The same run with the seam that passes
 * on every turn (the loop before pacing) shows that the pacing check can
 * fail. Every bound is a count or the agent's own record of its turns,
 * never wall-clock slack. */
#define _GNU_SOURCE
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <exitless/pvtimer_guest.h>

#include "check_main.h"
#include "internal.h"
#include "tsc.h"

#define MARGIN_US 200ull
#define ROUNDS 40
#define REARMS 500
#define VECTOR 0x60

struct fires {
	uint64_t n;
	uint64_t tsc[ROUNDS];
};

/* On the agent thread, after the slot's FIRED write: when it came. */
static int on_fire(void *ctx, uint32_t area, uint32_t slot, uint8_t vector)
{
	struct fires *f = ctx;
	uint64_t n = __atomic_load_n(&f->n, __ATOMIC_RELAXED);

	(void)area;
	(void)slot;
	(void)vector;
	if (n < ROUNDS)
		f->tsc[n] = tsc_now();
	__atomic_store_n(&f->n, n + 1, __ATOMIC_RELEASE);
	return 0;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { 0, (long)(us * 1000) };

	nanosleep(&ts, NULL);
}

struct outcome {
	struct pvagent_stats st;
	uint64_t turns, turn_max_tsc, pv_arms;
};

/* Arm on the pv path @ahead ticks from now, retrying (a starved agent's
 * promise may be stale, or wide: then further ahead, up to 256x, well
 * inside the 1 s horizon); @return the deadline held, 0 if none. */
static uint64_t arm_pv(struct pvtimer_guest *g, uint64_t ahead)
{
	for (int i = 0; i < 5000; i++) {
		uint64_t dl = tsc_now() + ahead;
		int r = pvtimer_guest_arm(g, dl);

		if (r == PVTIMER_GUEST_PV)
			return dl;
		if (r == PVTIMER_GUEST_FALLBACK_TOO_CLOSE && i < 8)
			ahead *= 2;
		sleep_us(1000);
	}
	return 0;
}

static void run(bool every_turn, struct outcome *out)
{
	uint64_t tpu = tsc_per_us();
	PVTIMER_AREA_OPTS(o, .slot_count = 1, .margin_tsc = MARGIN_US * tpu,
			  .max_horizon_tsc = 1000000 * tpu,
			  .tsc_khz = (uint32_t)(tpu * 1000),
			  .features = PVTIMER_F_FIRED_TSC);
	PVAGENT_OPTS(ao, .mode = PVAGENT_MODE_DEDICATED,
		     .tsc_khz = (uint32_t)(tpu * 1000));
	struct fires *f = calloc(1, sizeof(*f));
	struct pvagent_injector inj = { .kind = PVAGENT_INJ_CALLBACK,
				      .fn = on_fire, .ctx = f };
	struct pvtimer_area *area = NULL;
	struct pvagent *ag = NULL;
	struct pvtimer_guest g;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(pvtimer_area_new(&o, &area), 0);
	ck_assert_int_eq(pvtimer_guest_init(&g, pvtimer_area_mem(area),
					    pvtimer_area_bytes(area), 0, VECTOR),
			 0);
	ck_assert_int_eq(pvagent_new(&ao, &ag), 0);
	ck_assert_int_eq(pvagent_attach_area(ag, area, NULL, NULL), 0);
	ck_assert_int_eq(pvagent_bind_slot(ag, 0, 0, &inj), 0);
	ag->pass_every_turn = every_turn;
	ck_assert_int_eq(pvagent_start(ag), 0);
	out->pv_arms = 0;
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t dl, until;

		/* a tick device: a fresh deadline each time, every fourth
		 * arm cancelled, all superseded before they are due */
		for (int i = 0; i < REARMS; i++) {
			if (pvtimer_guest_arm(&g, tsc_now() + 2000 * tpu) ==
			    PVTIMER_GUEST_PV)
				out->pv_arms++;
			if (i % 4 == 3)
				pvtimer_guest_cancel(&g);
		}
		/* then one left to fire: never lost, never early */
		dl = arm_pv(&g, 1000 * tpu);
		ck_assert_uint_ne(dl, 0);
		out->pv_arms++;
		until = tsc_now() + 10000000 * tpu;
		while (__atomic_load_n(&f->n, __ATOMIC_ACQUIRE) < (uint64_t)r + 1 &&
		       tsc_now() < until)
			sleep_us(50);
		ck_assert_uint_eq(__atomic_load_n(&f->n, __ATOMIC_ACQUIRE),
				  (uint64_t)r + 1);
		ck_assert_uint_ge(f->tsc[r], dl);
		ck_assert_int_eq(pvtimer_guest_on_interrupt(&g),
				 PVTIMER_GUEST_IRQ_EXPIRED);
	}
	ck_assert_int_eq(pvagent_stop(ag), 0);
	/* the thread is joined: its private counters are ours to read */
	out->turns = ag->diag.turns;
	out->turn_max_tsc = ag->diag.turn_max_tsc;
	out->st.sz = sizeof(out->st);
	ck_assert_int_eq(pvagent_get_stats(ag, &out->st), 0);
	printf("%s: %llu turns, %llu passes, %llu publishes, %llu parkings, "
	       "%llu pv arms, %llu slot reads, %llu past, %llu promises late\n",
	       every_turn ? "pass every turn" : "paced",
	       (unsigned long long)out->turns, (unsigned long long)out->st.scans,
	       (unsigned long long)out->st.publishes,
	       (unsigned long long)out->st.backoffs,
	       (unsigned long long)out->pv_arms,
	       (unsigned long long)out->st.slot_reads,
	       (unsigned long long)out->st.past_arms,
	       (unsigned long long)out->st.promises_late);
	pvagent_destroy(ag);
	pvtimer_area_destroy(area);
	free(f);
}

/* Passes that touch the summary, beyond what pacing allows: one per
 * publish (the activation's included: its pass owes it), one per parking
 * that ended (a slot read torn on consecutive passes is parked; its
 * unparking is a pass), and the stop's. */
static uint64_t passes_beyond_pacing(const struct outcome *o)
{
	uint64_t allowed = o->st.publishes + o->st.backoffs + 1;

	return o->st.scans > allowed ? o->st.scans - allowed : 0;
}

START_TEST(paced_agent_passes_only_to_renew)
{
	uint64_t margin = MARGIN_US * tsc_per_us();
	struct outcome o;

	run(false, &o);
	ck_assert_uint_ge(o.pv_arms, ROUNDS);
	ck_assert_uint_ge(o.st.fires, ROUNDS);
	ck_assert_uint_gt(o.st.slot_reads, 0);
	ck_assert_uint_eq(passes_beyond_pacing(&o), 0);
	/* the loop still turns between passes (fire points, mailbox) */
	ck_assert_uint_gt(o.turns, o.st.scans);
	/* spec §5: an arm under promise T has D >= T + margin; the pass that
	 * sees it began by T unless a promise was broken (counted), and read
	 * it within its turn, which outlasted the margin if the read came
	 * after D */
	if (o.st.past_arms)
		ck_assert(o.st.promises_late > 0 || o.turn_max_tsc >= margin);
}
END_TEST

/* The loop before pacing, through the seam: the pacing check above would
 * fail on it (so it is not a check that cannot fail), and it keeps every
 * other property. */
START_TEST(pass_every_turn_fails_the_pacing_check)
{
	struct outcome o;

	run(true, &o);
	ck_assert_uint_ge(o.st.fires, ROUNDS);
	ck_assert_uint_gt(passes_beyond_pacing(&o), 0);
	ck_assert_uint_eq(o.turns, o.st.scans - 1); /* + the stop's pass */
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("agent-pace");
	TCase *tc = tcase_create("pace");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, paced_agent_passes_only_to_renew);
	tcase_add_test(tc, pass_every_turn_fails_the_pacing_check);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(suite)
