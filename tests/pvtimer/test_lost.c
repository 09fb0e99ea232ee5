/* SPDX-License-Identifier: MIT */
/* The lost-timer paths of ABI 1.0 (issue 7, items 1-7), each replayed as
 * the interleaving that lost a timer, with a fake guest clock. Every test
 * here failed (or, where 1.1 added the call, could not be expressed)
 * against the 1.0 rules; see docs/reliability.md. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

static unsigned long long fake_tsc;
#define PVTIMER_GUEST_READ_TSC() (__atomic_load_n(&fake_tsc, __ATOMIC_RELAXED))

#include "../common/check_main.h"
#include "area_view.h"
#include "exitless/pvtimer.h"
#include "exitless/pvtimer_guest.h"

#define MARGIN 100u
#define HORIZON 1000000u
#define VEC 0x50
#define SLOT 3u

static struct pvtimer_area *area;
static struct pvtimer_guest guest;

static void setup(void)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 8, .margin_tsc = MARGIN,
			  .max_horizon_tsc = HORIZON, .vector_min = 0x40,
			  .vector_max = 0xef);

	fake_tsc = 10000;
	ck_assert_int_eq(pvtimer_area_new(&o, &area), 0);
	ck_assert_int_eq(pvtimer_guest_init(&guest, pvtimer_area_mem(area),
					    pvtimer_area_bytes(area), SLOT, VEC),
			 0);
	ck_assert_int_eq(pvtimer_host_activate(area, fake_tsc + 1000, fake_tsc), 0);
}

static void teardown(void)
{
	pvtimer_area_destroy(area);
	area = NULL;
}

static struct pvtimer_abi_slot *slot(uint32_t i)
{
	return test_slot_of(area, i);
}

/* The host's pass over our slot: read it, hold it (SEEN) if armed. */
static int host_reads(struct pvtimer_slot_snapshot *snap)
{
	int rc = pvtimer_host_read_slot(area, SLOT, fake_tsc, snap);

	if (rc == 0 && snap->armed)
		pvtimer_host_ack(area, SLOT, snap->gen);
	return rc;
}

/* A guest line written the raw way a 1.0 guest (or a hostile one) would. */
static void raw_arm(uint32_t gen, uint64_t deadline, uint8_t vector)
{
	struct pvtimer_abi_slot *s = slot(SLOT);

	s->seq += 2;
	s->arm_gen = gen;
	s->deadline_tsc = deadline;
	s->vector = vector;
	s->arm_flags = PVTIMER_ARM_ARMED;
}

/* Item 1: the host's vector range is advertised and checked by the guest;
 * a rejected generation is woken exactly once, on a vector it accepts. */
START_TEST(rejected_generation_is_woken_once)
{
	struct pvtimer_slot_snapshot snap;
	struct pvtimer_guest g2;
	const struct pvtimer_abi_header *h = pvtimer_area_mem(area);

	ck_assert_uint_eq(h->features & PVTIMER_F_VECTOR_RANGE,
			  PVTIMER_F_VECTOR_RANGE);
	ck_assert_uint_eq(h->vector_min, 0x40);
	ck_assert_uint_eq(h->vector_max, 0xef);
	/* 1.0 let this guest arm vector 0x30, which the host then rejected
	 * without waking it */
	ck_assert_int_eq(pvtimer_guest_init(&g2, pvtimer_area_mem(area),
					    pvtimer_area_bytes(area), 1, 0x30),
			 PVTIMER_GUEST_ERANGE);
	ck_assert_int_eq(pvtimer_guest_init(&g2, pvtimer_area_mem(area),
					    pvtimer_area_bytes(area), 1, 0xf0),
			 PVTIMER_GUEST_ERANGE);
	/* a guest that ignores the range anyway: told, and woken once on the
	 * injector's own vector (0) since its own is not accepted */
	raw_arm(77, fake_tsc + 5000, 0x30);
	ck_assert_int_eq(pvtimer_host_read_slot(area, SLOT, fake_tsc, &snap), -EINVAL);
	ck_assert_uint_eq(snap.reject, PVTIMER_REJECT_VECTOR);
	ck_assert_uint_eq(snap.wake, 1);
	ck_assert_uint_eq(snap.vector, 0);
	ck_assert_int_eq(pvtimer_host_read_slot(area, SLOT, fake_tsc, &snap), -EINVAL);
	ck_assert_uint_eq(snap.wake, 0); /* exactly one interrupt */
	/* a far deadline on a good vector is woken on that vector */
	raw_arm(78, fake_tsc + HORIZON + 10, VEC);
	ck_assert_int_eq(pvtimer_host_read_slot(area, SLOT, fake_tsc, &snap), -EINVAL);
	ck_assert_uint_eq(snap.reject, PVTIMER_REJECT_FAR);
	ck_assert_uint_eq(snap.wake, 1);
	ck_assert_uint_eq(snap.vector, VEC);
	/* and the woken guest, whatever it had decided, now falls back */
	guest.gen = 77; /* as if this guest had written generation 78 */
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	ck_assert_uint_eq(slot(SLOT)->arm_gen, 78);
	slot(SLOT)->vector = 0x30; /* scribbled after the arm */
	slot(SLOT)->seq += 2;
	ck_assert_int_eq(pvtimer_host_read_slot(area, SLOT, fake_tsc, &snap), -EINVAL);
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest), PVTIMER_GUEST_IRQ_HANDBACK);
	ck_assert_uint_eq(pvtimer_guest_hw_deadline(&guest), fake_tsc + 5000);
}
END_TEST

/* Item 2: a held deadline, a host stalled past it by more than the
 * horizon: on waking, the re-read fires it at once (1.0: REJECTED PAST). */
START_TEST(past_after_a_stall_fires)
{
	struct pvtimer_slot_snapshot snap;
	uint64_t d = fake_tsc + 1000 + MARGIN;

	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	ck_assert_uint_eq(snap.armed, 1);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_PV);
	fake_tsc = d + 10ull * HORIZON; /* the host thread was stopped */
	ck_assert_int_eq(pvtimer_host_read_slot(area, SLOT, fake_tsc, &snap), 0);
	ck_assert_uint_eq(snap.armed, 1);
	ck_assert_uint_eq(snap.past, 1);
	ck_assert_uint_eq(snap.recheck, 1); /* same arm: lateness is the host's */
	ck_assert_uint_ne(PVTIMER_STATUS_CODE(slot(SLOT)->status_word),
			  PVTIMER_STATUS_REJECTED);
	/* newly read and far in the past: also a fire, never a reject */
	raw_arm(snap.gen + 1, fake_tsc - 5ull * HORIZON, VEC);
	ck_assert_int_eq(pvtimer_host_read_slot(area, SLOT, fake_tsc, &snap), 0);
	ck_assert_uint_eq(snap.past, 1);
	ck_assert_uint_eq(snap.recheck, 0);
}
END_TEST

/* Item 3: "already fired" is exact. 1.0 refused any later arm carrying the
 * last fired generation number, which comes back after 2^32 publishes. */
START_TEST(generation_wrap_is_a_new_arm)
{
	struct pvtimer_slot_snapshot snap;
	uint64_t d = fake_tsc + 1000 + MARGIN;
	uint32_t g;

	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	g = snap.gen;
	fake_tsc = d;
	pvtimer_host_fired(area, SLOT, g, fake_tsc);
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest), PVTIMER_GUEST_IRQ_EXPIRED);
	/* a re-read of the same arm (after activation, say) never refires */
	ck_assert_int_eq(pvtimer_host_read_slot(area, SLOT, fake_tsc, &snap), 0);
	ck_assert_uint_eq(snap.armed, 0);
	ck_assert_uint_eq(snap.already_fired, 1);
	/* (a) the host read another generation in between: forgotten */
	pvtimer_host_publish(area, fake_tsc + 1000, fake_tsc);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	guest.gen = g - 1; /* 2^32 - 1 publishes later */
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_FALLBACK_PAST);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	ck_assert_uint_eq(slot(SLOT)->arm_gen, g + 1);
	guest.gen = g - 1;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 6000), PVTIMER_GUEST_PV);
	ck_assert_uint_eq(slot(SLOT)->arm_gen, g);
	ck_assert_int_eq(host_reads(&snap), 0);
	ck_assert_uint_eq(snap.armed, 1);
	ck_assert_uint_eq(snap.already_fired, 0);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_PV);
	/* (b) no read in between, a new deadline: the deadline tells */
	fake_tsc += 6000;
	pvtimer_host_fired(area, SLOT, g, fake_tsc);
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest), PVTIMER_GUEST_IRQ_EXPIRED);
	pvtimer_host_publish(area, fake_tsc + 1000, fake_tsc);
	guest.gen = g - 1;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 7000), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	ck_assert_uint_eq(snap.armed, 1);
	/* (c) the one ambiguous case left: same number, same deadline, no
	 * read in between. A deadline that fired on time is past now, so
	 * this needs an early fire; the host then says FIRED and the guest
	 * falls back instead of halting on it */
	fake_tsc += 7000;
	pvtimer_host_publish(area, fake_tsc + 1000, fake_tsc);
	d = fake_tsc + 5000;
	guest.gen = g - 1;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	pvtimer_host_fired(area, SLOT, g, d - 50);
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest), PVTIMER_GUEST_IRQ_EARLY);
	guest.gen = g - 1;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_PV);
	ck_assert_uint_eq(slot(SLOT)->arm_gen, g);
	ck_assert_int_eq(pvtimer_host_read_slot(area, SLOT, fake_tsc, &snap), 0);
	ck_assert_uint_eq(snap.already_fired, 1);
	ck_assert_uint_eq(PVTIMER_STATUS_CODE(slot(SLOT)->status_word),
			  PVTIMER_STATUS_FIRED);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_FALLBACK_FIRED);
	ck_assert_uint_eq(pvtimer_guest_hw_deadline(&guest), d);
}
END_TEST

/* Item 4: FIRED before the deadline (a failed or early injection, a host
 * clock a little off) is re-armed in hardware, never taken as done. */
START_TEST(fired_before_the_deadline_is_rearmed)
{
	struct pvtimer_slot_snapshot snap;
	uint64_t d = fake_tsc + 1000 + MARGIN;

	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	pvtimer_host_fired(area, SLOT, snap.gen, d - 40); /* 40 ticks early */
	fake_tsc = d - 30;
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest), PVTIMER_GUEST_IRQ_EARLY);
	ck_assert_uint_eq(pvtimer_guest_hw_deadline(&guest), d);
	ck_assert_uint_eq(slot(SLOT)->arm_flags, 0); /* withdrawn */
	/* FIRED seen at halt, its interrupt not (injection failed) */
	fake_tsc = 20000;
	pvtimer_host_publish(area, fake_tsc + 1000, fake_tsc);
	d = fake_tsc + 1000 + MARGIN;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	pvtimer_host_fired(area, SLOT, snap.gen, d - 5);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_FALLBACK_FIRED);
	ck_assert_uint_eq(pvtimer_guest_hw_deadline(&guest), d);
}
END_TEST

/* Item 5: modular TSC. A guest TSC about to wrap arms a deadline past 2^64
 * (1.0: PAST), and the host converts it without saturating. */
START_TEST(tsc_near_the_wrap)
{
	struct pvtimer_slot_snapshot snap;
	struct pvtimer_tsc_map m;
	uint64_t d;

	fake_tsc = UINT64_MAX - 600;
	pvtimer_host_publish(area, fake_tsc + 1000, fake_tsc); /* wraps */
	d = fake_tsc + 1000 + MARGIN;
	ck_assert_uint_lt(d, 1000);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	ck_assert_uint_eq(snap.armed, 1);
	ck_assert_uint_eq(snap.past, 0);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_PV);
	/* guest = host - 1000 (mod 2^64): host TSC 500 is guest 2^64 - 500 */
	ck_assert_int_eq(pvtimer_tsc_map_init(&m, 1000, 1000, -1000), 0);
	ck_assert_uint_eq(pvtimer_tsc_to_guest(&m, 500), UINT64_MAX - 499);
	ck_assert_uint_eq(pvtimer_tsc_to_host(&m, UINT64_MAX - 499), 500);
	ck_assert_uint_eq(pvtimer_tsc_to_host(&m, 100), 1100); /* after the wrap */
	/* scaled maps wrap the same way */
	ck_assert_int_eq(pvtimer_tsc_map_init(&m, 2000, 1000, -1000), 0);
	ck_assert_uint_eq(pvtimer_tsc_to_host(&m, pvtimer_tsc_to_guest(&m, 4000)), 4000);
	ck_assert_uint_eq(pvtimer_tsc_to_host(&m, pvtimer_tsc_to_guest(&m, 1000)), 1000);
}
END_TEST

/* Item 6a: a host that stops keeping promises (dead, stalled) is not
 * trusted by a halt on a SEEN arm (1.0 halted on SEEN + ACTIVE alone). */
START_TEST(seen_is_trusted_only_within_the_promise)
{
	struct pvtimer_slot_snapshot snap;
	uint64_t d = fake_tsc + 1000 + MARGIN + 5000;

	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	fake_tsc += 999;
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_PV);
	fake_tsc += 2; /* past the promise: the host died after its ack */
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_FALLBACK_STALE);
	ck_assert_uint_eq(pvtimer_guest_hw_deadline(&guest), d);
	ck_assert_uint_eq(slot(SLOT)->arm_flags, 0);
	/* a held deadline earlier than the host's next pass is still held:
	 * the pass matters only to an arm not seen yet (the Linux module
	 * found the helper withdrawing such arms as TOO_CLOSE) */
	pvtimer_host_publish(area, fake_tsc + 100000, fake_tsc);
	d = fake_tsc + 100000 + MARGIN;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	pvtimer_host_publish(area, d + 5000, fake_tsc + 50);
	fake_tsc += 100;
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_PV);
	/* and one not seen yet, with the next pass after D, falls back */
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d + 1), PVTIMER_GUEST_FALLBACK_TOO_CLOSE);
}
END_TEST

/* Item 6b: the liveness backstop. While a deadline is held the hardware
 * timer is armed at most B ahead, programmed once per B. */
START_TEST(backstop_bounds_a_dead_host)
{
	const uint64_t b = 300;
	uint64_t d = fake_tsc + 1000 + MARGIN + 5000, t0 = fake_tsc;
	struct pvtimer_slot_snapshot snap;

	pvtimer_guest_set_backstop(&guest, b);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_BACKSTOP);
	ck_assert_uint_eq(pvtimer_guest_hw_deadline(&guest), t0 + b);
	ck_assert_int_eq(host_reads(&snap), 0);
	/* re-arming within B keeps the programmed backstop: no exit */
	fake_tsc += 10;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d + 1), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_PV);
	/* backstop expires, host alive: re-armed B ahead */
	fake_tsc = t0 + b;
	pvtimer_host_publish(area, fake_tsc + 1000, fake_tsc);
	ck_assert_int_eq(pvtimer_guest_on_hw_timer(&guest), PVTIMER_GUEST_BACKSTOP);
	ck_assert_uint_eq(pvtimer_guest_hw_deadline(&guest), fake_tsc + b);
	/* the host dies (its last promise runs out): the next backstop
	 * falls back */
	fake_tsc += 1001;
	ck_assert_int_eq(pvtimer_guest_on_hw_timer(&guest), PVTIMER_GUEST_FALLBACK_STALE);
	ck_assert_uint_eq(pvtimer_guest_hw_deadline(&guest), d + 1);
	ck_assert_int_eq(pvtimer_guest_on_hw_timer(&guest), PVTIMER_GUEST_HW_EXPIRED);
	/* a deadline the host never delivered is delivered by the backstop */
	pvtimer_host_publish(area, fake_tsc + 1000, fake_tsc);
	d = fake_tsc + 1000 + MARGIN;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_BACKSTOP);
	fake_tsc = d + 1;
	ck_assert_int_eq(pvtimer_guest_on_hw_timer(&guest), PVTIMER_GUEST_HW_EXPIRED);
	ck_assert_uint_eq(pvtimer_guest_pv_deadline(&guest), 0);
	/* a backstop outliving a delivered deadline is nothing */
	pvtimer_host_publish(area, fake_tsc + 1000, fake_tsc);
	d = fake_tsc + 1000 + MARGIN;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_BACKSTOP);
	fake_tsc = d;
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest), PVTIMER_GUEST_IRQ_EXPIRED);
	ck_assert_int_eq(pvtimer_guest_on_hw_timer(&guest), PVTIMER_GUEST_HW_IGNORE);
	/* backstop off: a stale hardware interrupt while the host still
	 * holds the deadline consumes nothing (it was HW_EXPIRED, 0) */
	pvtimer_guest_set_backstop(&guest, 0);
	pvtimer_host_publish(area, fake_tsc + 1000, fake_tsc);
	d = fake_tsc + 1000 + MARGIN;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, d), PVTIMER_GUEST_PV);
	ck_assert_int_eq(pvtimer_guest_on_hw_timer(&guest), PVTIMER_GUEST_HW_IGNORE);
	ck_assert_uint_eq(pvtimer_guest_pv_deadline(&guest), d);
}
END_TEST

/* Item 7: detach's RMW on the slot's own pending bit. */
START_TEST(take_pending_is_per_slot)
{
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	pvtimer_host_requeue(area, SLOT + 1);
	ck_assert_int_eq(pvtimer_host_take_pending(area, SLOT), 1);
	ck_assert_int_eq(pvtimer_host_take_pending(area, SLOT), 0);
	ck_assert_int_eq(pvtimer_host_take_pending(area, SLOT + 1), 1);
	ck_assert_int_eq(pvtimer_host_take_pending(area, 8), -ERANGE);
}
END_TEST

/* A cancel read by the host clears a SEEN it left for an older
 * generation, so no stale SEEN can survive to a wrapped number. */
START_TEST(cancel_clears_a_stale_seen)
{
	struct pvtimer_slot_snapshot snap;

	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	ck_assert_int_eq(host_reads(&snap), 0);
	ck_assert_uint_eq(PVTIMER_STATUS_CODE(slot(SLOT)->status_word),
			  PVTIMER_STATUS_SEEN);
	pvtimer_guest_cancel(&guest);
	ck_assert_int_eq(host_reads(&snap), 0);
	ck_assert_uint_eq(PVTIMER_STATUS_CODE(slot(SLOT)->status_word),
			  PVTIMER_STATUS_NONE);
	ck_assert_uint_eq(PVTIMER_STATUS_GEN(slot(SLOT)->status_word), snap.gen);
}
END_TEST

static Suite *lost_suite(void)
{
	Suite *s = suite_create("pvtimer-lost");
	TCase *tc = tcase_create("lost");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, rejected_generation_is_woken_once);
	tcase_add_test(tc, past_after_a_stall_fires);
	tcase_add_test(tc, generation_wrap_is_a_new_arm);
	tcase_add_test(tc, fired_before_the_deadline_is_rearmed);
	tcase_add_test(tc, tsc_near_the_wrap);
	tcase_add_test(tc, seen_is_trusted_only_within_the_promise);
	tcase_add_test(tc, backstop_bounds_a_dead_host);
	tcase_add_test(tc, take_pending_is_per_slot);
	tcase_add_test(tc, cancel_clears_a_stale_seen);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(lost_suite)
