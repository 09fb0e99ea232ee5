/* SPDX-License-Identifier: MIT */
/* The protocol end to end with a fake guest clock: the fallback rule at each
 * boundary, arm/cancel/re-arm, generation wrap, stop/handback, the pending
 * bitmap and TSC conversion. */
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
#define VEC 0xec

static struct pvtimer_area *area;
static struct pvtimer_guest guest;

static void setup(void)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 130, .margin_tsc = MARGIN,
			  .max_horizon_tsc = HORIZON,
			  .features = PVTIMER_F_FIRED_TSC);

	fake_tsc = 10000;
	ck_assert_int_eq(pvtimer_area_new(&o, &area), 0);
	ck_assert_int_eq(pvtimer_guest_init(&guest, pvtimer_area_mem(area),
					    pvtimer_area_bytes(area), 65, VEC),
			 0);
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

/* Drain one pending pass; return how many slots it named, first in *first. */
static int drain(uint32_t *first)
{
	struct pvtimer_pending_iter it;
	uint32_t s;
	int n = 0;

	pvtimer_host_pending_begin(area, &it);
	while (pvtimer_host_pending_next(area, &it, &s))
		if (n++ == 0 && first)
			*first = s;
	return n;
}

START_TEST(rule_boundaries)
{
	const uint32_t on = PVTIMER_HOST_ACTIVE;
	const uint64_t now = 1000, sync = 2000;

	ck_assert_int_eq(pvtimer_fallback_reason(0, sync, MARGIN, HORIZON, 5000, now),
			 PVTIMER_GUEST_FALLBACK_DISABLED);
	ck_assert_int_eq(pvtimer_fallback_reason(on, sync, MARGIN, HORIZON, now, now),
			 PVTIMER_GUEST_FALLBACK_PAST);
	ck_assert_int_eq(pvtimer_fallback_reason(on, sync, MARGIN, HORIZON, now - 1, now),
			 PVTIMER_GUEST_FALLBACK_PAST);
	ck_assert_int_eq(pvtimer_fallback_reason(on, sync, MARGIN, HORIZON,
						 now + HORIZON, now),
			 PVTIMER_GUEST_PV);
	ck_assert_int_eq(pvtimer_fallback_reason(on, sync, MARGIN, HORIZON,
						 now + HORIZON + 1, now),
			 PVTIMER_GUEST_FALLBACK_TOO_FAR);
	ck_assert_int_eq(pvtimer_fallback_reason(on, sync, MARGIN, HORIZON, 5000, sync),
			 PVTIMER_GUEST_PV);
	ck_assert_int_eq(pvtimer_fallback_reason(on, sync, MARGIN, HORIZON, 5000,
						 sync + 1),
			 PVTIMER_GUEST_FALLBACK_STALE);
	ck_assert_int_eq(pvtimer_fallback_reason(on, sync, MARGIN, HORIZON,
						 sync + MARGIN, now),
			 PVTIMER_GUEST_PV);
	ck_assert_int_eq(pvtimer_fallback_reason(on, sync, MARGIN, HORIZON,
						 sync + MARGIN - 1, now),
			 PVTIMER_GUEST_FALLBACK_TOO_CLOSE);
	ck_assert_int_eq(pvtimer_fallback_reason(on, sync, MARGIN, HORIZON, sync - 1, now),
			 PVTIMER_GUEST_FALLBACK_TOO_CLOSE);
	/* modular: a clock about to wrap, a promise and deadlines past 2^64 */
	{
		const uint64_t w = UINT64_MAX - 500, ws = w + 1000;

		ck_assert_int_eq(pvtimer_fallback_reason(on, ws, MARGIN, HORIZON,
							 ws + MARGIN, w),
				 PVTIMER_GUEST_PV);
		ck_assert_int_eq(pvtimer_fallback_reason(on, ws, MARGIN, HORIZON,
							 ws + MARGIN - 1, w),
				 PVTIMER_GUEST_FALLBACK_TOO_CLOSE);
		ck_assert_int_eq(pvtimer_fallback_reason(on, ws, MARGIN, HORIZON,
							 w + HORIZON + 1, w),
				 PVTIMER_GUEST_FALLBACK_TOO_FAR);
		ck_assert_int_eq(pvtimer_fallback_reason(on, ws, MARGIN, HORIZON,
							 w - 1, w),
				 PVTIMER_GUEST_FALLBACK_PAST);
		ck_assert_int_eq(pvtimer_fallback_reason(on, ws, MARGIN, HORIZON,
							 ws + MARGIN, ws + 1),
				 PVTIMER_GUEST_FALLBACK_STALE);
	}
	ck_assert_int_eq(pvtimer_fallback_reason(on, sync, UINT64_MAX, HORIZON, 5000, now),
			 PVTIMER_GUEST_FALLBACK_TOO_CLOSE);
	ck_assert_int_eq(pvtimer_fallback_reason(on, 0, 0, HORIZON, 5000, now),
			 PVTIMER_GUEST_FALLBACK_STALE);
}
END_TEST

START_TEST(inactive_area_writes_nothing)
{
	uint32_t gen = slot(65)->arm_gen;

	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000),
			 PVTIMER_GUEST_FALLBACK_DISABLED);
	ck_assert_uint_eq(slot(65)->arm_gen, gen);
	ck_assert_int_eq(drain(NULL), 0);
}
END_TEST

START_TEST(arm_is_seen_acked_and_fired)
{
	struct pvtimer_slot_snapshot snap;
	uint32_t first = 0;

	ck_assert_int_eq(pvtimer_host_activate(area, fake_tsc + 1000, fake_tsc), 0);
	ck_assert_int_eq(drain(NULL), 130); /* activation re-reads every slot */
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 1000 + MARGIN),
			 PVTIMER_GUEST_PV);
	ck_assert_int_eq(drain(&first), 1);
	ck_assert_uint_eq(first, 65);
	ck_assert_int_eq(pvtimer_host_read_slot(area, 65, fake_tsc, &snap), 0);
	ck_assert_uint_eq(snap.armed, 1);
	ck_assert_uint_eq(snap.deadline_tsc, 10000 + 1000 + MARGIN);
	ck_assert_uint_eq(snap.vector, VEC);
	ck_assert_uint_eq(snap.past, 0);
	ck_assert_int_eq(pvtimer_host_ack(area, 65, snap.gen), 0);
	ck_assert_uint_eq(PVTIMER_STATUS_CODE(slot(65)->status_word),
			  PVTIMER_STATUS_SEEN);
	/* held by a host keeping its promise: safe to halt */
	fake_tsc += 900;
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_PV);
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest),
			 PVTIMER_GUEST_IRQ_SPURIOUS); /* early: not yet due */
	fake_tsc = snap.deadline_tsc;
	ck_assert_int_eq(pvtimer_host_fired(area, 65, snap.gen, fake_tsc), 0);
	ck_assert_uint_eq(slot(65)->fired_gen, snap.gen);
	ck_assert_uint_eq(slot(65)->fired_tsc, fake_tsc);
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest),
			 PVTIMER_GUEST_IRQ_EXPIRED);
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest),
			 PVTIMER_GUEST_IRQ_SPURIOUS); /* consumed once */
}
END_TEST

START_TEST(too_close_and_stale_fall_back)
{
	uint32_t gen;

	pvtimer_host_activate(area, fake_tsc + 1000, fake_tsc);
	drain(NULL);
	gen = slot(65)->arm_gen;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 1000 + MARGIN - 1),
			 PVTIMER_GUEST_FALLBACK_TOO_CLOSE);
	ck_assert_uint_eq(slot(65)->arm_gen, gen); /* early exit: no write */
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc - 1),
			 PVTIMER_GUEST_FALLBACK_PAST);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + HORIZON + 1),
			 PVTIMER_GUEST_FALLBACK_TOO_FAR);
	fake_tsc += 1001; /* the host missed its promise */
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000),
			 PVTIMER_GUEST_FALLBACK_STALE);
	/* the slot's own promise: withdrawn means every arm falls back */
	pvtimer_host_publish(area, fake_tsc + 1000, fake_tsc);
	pvtimer_host_set_slot_sync(area, 65, PVTIMER_SYNC_NEVER);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000),
			 PVTIMER_GUEST_FALLBACK_STALE);
	pvtimer_host_set_slot_sync(area, 65, PVTIMER_SYNC_FOLLOW_AREA);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000),
			 PVTIMER_GUEST_PV);
	ck_assert_int_eq(pvtimer_host_set_slot_sync(area, 130, 0), -ERANGE);
}
END_TEST

START_TEST(cancel_and_rearm_are_unambiguous)
{
	struct pvtimer_slot_snapshot snap;
	uint32_t g1, g2;

	pvtimer_host_activate(area, fake_tsc + 1000, fake_tsc);
	drain(NULL);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	g1 = slot(65)->arm_gen;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 6000), PVTIMER_GUEST_PV);
	g2 = slot(65)->arm_gen;
	ck_assert_uint_eq(g2, g1 + 1);
	ck_assert_int_eq(drain(NULL), 1); /* two arms, one pending bit */
	pvtimer_host_read_slot(area, 65, fake_tsc, &snap);
	ck_assert_uint_eq(snap.gen, g2);
	ck_assert_uint_eq(snap.deadline_tsc, 10000 + 6000);
	pvtimer_guest_cancel(&guest);
	ck_assert_int_eq(drain(NULL), 1);
	ck_assert_int_eq(pvtimer_host_read_slot(area, 65, fake_tsc, &snap), 0);
	ck_assert_uint_eq(snap.armed, 0);
	ck_assert_uint_eq(snap.gen, g2 + 1);
	/* a fire of the stale generation that raced the cancel */
	pvtimer_host_fired(area, 65, g2, fake_tsc + 6000);
	fake_tsc += 7000;
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest),
			 PVTIMER_GUEST_IRQ_SPURIOUS);
	pvtimer_guest_cancel(&guest); /* nothing armed: no write */
	ck_assert_uint_eq(slot(65)->arm_gen, g2 + 1);
}
END_TEST

START_TEST(generation_wraps)
{
	struct pvtimer_slot_snapshot snap;

	slot(65)->arm_gen = UINT32_MAX;
	ck_assert_int_eq(pvtimer_guest_init(&guest, pvtimer_area_mem(area),
					    pvtimer_area_bytes(area), 65, VEC),
			 0);
	pvtimer_host_activate(area, fake_tsc + 1000, fake_tsc);
	drain(NULL);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	ck_assert_uint_eq(slot(65)->arm_gen, 0);
	ck_assert_int_eq(pvtimer_host_read_slot(area, 65, fake_tsc, &snap), 0);
	ck_assert_uint_eq(snap.gen, 0);
	ck_assert_uint_eq(snap.armed, 1);
	pvtimer_host_ack(area, 65, 0);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_PV);
	pvtimer_host_fired(area, 65, 0, fake_tsc + 5000);
	fake_tsc += 5000;
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest),
			 PVTIMER_GUEST_IRQ_EXPIRED);
}
END_TEST

START_TEST(stop_hands_back)
{
	struct pvtimer_slot_snapshot snap;

	pvtimer_host_activate(area, fake_tsc + 1000, fake_tsc);
	drain(NULL);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	ck_assert_int_eq(pvtimer_host_deactivate(area), 0);
	/* the final pass still finds the arm and hands it back */
	ck_assert_int_eq(drain(NULL), 1);
	pvtimer_host_read_slot(area, 65, fake_tsc, &snap);
	ck_assert_int_eq(pvtimer_host_handback(area, 65, snap.gen), 0);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest),
			 PVTIMER_GUEST_FALLBACK_REJECTED);
	/* withdrawn: a host resuming later finds nothing stale to fire */
	ck_assert_uint_eq(slot(65)->arm_flags, 0);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000),
			 PVTIMER_GUEST_FALLBACK_DISABLED);
	/* an interrupt delivering a handback, classified as such */
	pvtimer_host_activate(area, fake_tsc + 1000, fake_tsc);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	pvtimer_host_deactivate(area);
	pvtimer_host_handback(area, 65, slot(65)->arm_gen);
	ck_assert_int_eq(pvtimer_guest_on_interrupt(&guest),
			 PVTIMER_GUEST_IRQ_HANDBACK);
	ck_assert_uint_eq(slot(65)->arm_flags, 0);
	/* a seen arm is no longer trusted once the host stopped */
	pvtimer_host_activate(area, fake_tsc + 1000, fake_tsc);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	pvtimer_host_ack(area, 65, slot(65)->arm_gen);
	pvtimer_host_deactivate(area);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest),
			 PVTIMER_GUEST_FALLBACK_DISABLED);
}
END_TEST

START_TEST(unseen_arm_checked_before_halt)
{
	pvtimer_host_activate(area, fake_tsc + 1000, fake_tsc);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_PV);
	fake_tsc += 1001; /* host late and has not seen it */
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest),
			 PVTIMER_GUEST_FALLBACK_STALE);
	/* the guest cancelled its pv arm: nothing stays armed twice */
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest), PVTIMER_GUEST_PV);
	ck_assert_uint_eq(slot(65)->arm_flags, 0);
}
END_TEST

START_TEST(rejected_arm_is_reported)
{
	struct pvtimer_slot_snapshot snap;

	pvtimer_host_activate(area, fake_tsc + 1000, fake_tsc);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	slot(65)->vector = 3; /* as if the guest wrote garbage */
	ck_assert_int_eq(pvtimer_host_read_slot(area, 65, fake_tsc, &snap), -EINVAL);
	ck_assert_uint_eq(snap.reject, PVTIMER_REJECT_VECTOR);
	ck_assert_int_eq(pvtimer_guest_before_halt(&guest),
			 PVTIMER_GUEST_FALLBACK_REJECTED);
}
END_TEST

START_TEST(pending_names_each_slot_once_in_order)
{
	const uint32_t want[] = {0, 1, 63, 64, 65, 129};
	struct pvtimer_pending_iter it;
	uint32_t s, i = 0;

	for (int k = 5; k >= 0; k--)
		ck_assert_int_eq(pvtimer_host_requeue(area, want[k]), 0);
	pvtimer_host_requeue(area, 63); /* twice: still once */
	ck_assert_int_eq(pvtimer_host_requeue(area, 130), -ERANGE);
	pvtimer_host_pending_begin(area, &it);
	while (pvtimer_host_pending_next(area, &it, &s)) {
		ck_assert_uint_lt(i, 6);
		ck_assert_uint_eq(s, want[i]);
		i++;
	}
	ck_assert_uint_eq(i, 6);
	ck_assert_uint_eq(it.visited_words, 3);
	ck_assert_int_eq(drain(NULL), 0);
}
END_TEST

START_TEST(guest_init_validates)
{
	struct pvtimer_guest g;
	void *mem = pvtimer_area_mem(area);
	size_t bytes = pvtimer_area_bytes(area);
	struct pvtimer_abi_header *h = mem;
	uint64_t gpa, size;
	uint32_t s;

	ck_assert_int_eq(pvtimer_guest_init(&g, mem, bytes, 130, VEC),
			 PVTIMER_GUEST_ERANGE);
	ck_assert_int_eq(pvtimer_guest_init(&g, mem, bytes, 0, 31),
			 PVTIMER_GUEST_ERANGE);
	ck_assert_int_eq(pvtimer_guest_init(&g, mem, 4096, 0, VEC),
			 PVTIMER_GUEST_EINVAL);
	h->abi_major = 9;
	ck_assert_int_eq(pvtimer_guest_init(&g, mem, bytes, 0, VEC),
			 PVTIMER_GUEST_EPROTO);
	h->abi_major = 1;
	h->pending_words = 1;
	ck_assert_int_eq(pvtimer_guest_init(&g, mem, bytes, 0, VEC),
			 PVTIMER_GUEST_EINVAL);
	h->pending_words = 3;
	ck_assert_int_eq(pvtimer_guest_cpuid_decode(0xfee00000u, 1, 7, 2, &gpa, &s,
						    &size),
			 0);
	ck_assert_uint_eq(gpa, 0x1fee00000ull);
	ck_assert_uint_eq(s, 7);
	ck_assert_uint_eq(size, 8192);
	ck_assert_int_eq(pvtimer_guest_cpuid_decode(0xfee00010u, 0, 0, 1, &gpa, &s,
						    &size),
			 PVTIMER_GUEST_EINVAL);
	ck_assert_int_eq(pvtimer_guest_cpuid_decode(0, 0, PVTIMER_CPUID_NO_SLOT, 1,
						    &gpa, &s, &size),
			 PVTIMER_GUEST_EINVAL);
}
END_TEST

START_TEST(tsc_maps)
{
	struct pvtimer_tsc_map m;

	ck_assert_int_eq(pvtimer_tsc_map_init(&m, 0, 1, 0), -EINVAL);
	ck_assert_int_eq(pvtimer_tsc_map_init(&m, 2000000, 2000000, 500), 0);
	ck_assert_uint_eq(pvtimer_tsc_to_guest(&m, 10000), 10500);
	ck_assert_uint_eq(pvtimer_tsc_to_host(&m, 10500), 10000);
	/* modular, like the hardware: below the offset wraps, and back */
	ck_assert_uint_eq(pvtimer_tsc_to_host(&m, 100), (uint64_t)100 - 500);
	ck_assert_uint_eq(pvtimer_tsc_to_guest(&m, pvtimer_tsc_to_host(&m, 100)), 100);
	/* guest runs at half the host rate */
	ck_assert_int_eq(pvtimer_tsc_map_init(&m, 2000000, 1000000, 1000), 0);
	ck_assert_uint_eq(pvtimer_tsc_to_guest(&m, 4000), 3000);
	ck_assert_uint_eq(pvtimer_tsc_to_host(&m, 3000), 4000);
	/* a converted deadline is never early and at most one tick late */
	for (uint64_t h = 12345; h < 1ull << 50; h = h * 3 + 7) {
		uint64_t g = pvtimer_tsc_to_guest(&m, h);
		uint64_t back = pvtimer_tsc_to_guest(&m, pvtimer_tsc_to_host(&m, g));

		ck_assert_uint_ge(back, g);
		ck_assert_uint_le(back, g + 1);
	}
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *s = suite_create("pvtimer-protocol");
	TCase *tc = tcase_create("protocol");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, rule_boundaries);
	tcase_add_test(tc, inactive_area_writes_nothing);
	tcase_add_test(tc, arm_is_seen_acked_and_fired);
	tcase_add_test(tc, too_close_and_stale_fall_back);
	tcase_add_test(tc, cancel_and_rearm_are_unambiguous);
	tcase_add_test(tc, generation_wraps);
	tcase_add_test(tc, stop_hands_back);
	tcase_add_test(tc, unseen_arm_checked_before_halt);
	tcase_add_test(tc, rejected_arm_is_reported);
	tcase_add_test(tc, pending_names_each_slot_once_in_order);
	tcase_add_test(tc, guest_init_validates);
	tcase_add_test(tc, tsc_maps);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(protocol_suite)
