/* SPDX-License-Identifier: MIT */
/* Caller-allocated structs that cross the host API grow only into their
 * reserved tails: fixed sizes, frozen offsets, and the library initialising
 * every byte it owns, so a field added later reads zero from an older one. */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "../common/check_main.h"
#include "exitless/pvtimer.h"

_Static_assert(sizeof(struct pvtimer_slot_snapshot) == 64, "snapshot size");
_Static_assert(offsetof(struct pvtimer_slot_snapshot, deadline_tsc) == 0 &&
		       offsetof(struct pvtimer_slot_snapshot, gen) == 8 &&
		       offsetof(struct pvtimer_slot_snapshot, vector) == 12 &&
		       offsetof(struct pvtimer_slot_snapshot, armed) == 13 &&
		       offsetof(struct pvtimer_slot_snapshot, reject) == 14 &&
		       offsetof(struct pvtimer_slot_snapshot, past) == 15 &&
		       offsetof(struct pvtimer_slot_snapshot, already_fired) == 16 &&
		       offsetof(struct pvtimer_slot_snapshot, wake) == 17 &&
		       offsetof(struct pvtimer_slot_snapshot, recheck) == 18 &&
		       offsetof(struct pvtimer_slot_snapshot, reserved) == 19,
	       "snapshot offsets are frozen");
_Static_assert(sizeof(struct pvtimer_pending_iter) == 64, "iterator size");
_Static_assert(sizeof(struct pvtimer_tsc_map) == 48, "tsc map size");
_Static_assert(offsetof(struct pvtimer_tsc_map, mult) == 0 &&
		       offsetof(struct pvtimer_tsc_map, shift) == 8 &&
		       offsetof(struct pvtimer_tsc_map, reserved) == 12 &&
		       offsetof(struct pvtimer_tsc_map, offset) == 16 &&
		       offsetof(struct pvtimer_tsc_map, reserved_tail) == 24,
	       "tsc map offsets are frozen");

static int all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

START_TEST(snapshot_is_written_whole)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 2);
	struct pvtimer_slot_snapshot snap;
	struct pvtimer_area *a = NULL;

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	/* a stack snapshot as callers pass it: uninitialised */
	memset(&snap, 0xff, sizeof(snap));
	ck_assert_int_eq(pvtimer_host_read_slot(a, 1, 1000, &snap), 0);
	ck_assert_uint_eq(snap.armed, 0);
	ck_assert(all_zero(snap.reserved, sizeof(snap.reserved)));
	/* a rejected arm: unknown flag bits on an armed line */
	{
		struct pvtimer_abi_header *h = pvtimer_area_mem(a);
		struct pvtimer_abi_slot *s = (void *)((char *)h + h->slots_offset);

		s->arm_gen = 1;
		s->vector = 0x40;
		s->deadline_tsc = 2000;
		s->arm_flags = PVTIMER_ARM_ARMED | 0x80;
	}
	memset(&snap, 0xff, sizeof(snap));
	ck_assert_int_eq(pvtimer_host_read_slot(a, 0, 1000, &snap), -EINVAL);
	ck_assert_uint_eq(snap.reject, PVTIMER_REJECT_FLAGS);
	ck_assert(all_zero(snap.reserved, sizeof(snap.reserved)));
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(iterator_is_initialised_whole)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 70);
	struct pvtimer_pending_iter it;
	struct pvtimer_area *a = NULL;
	uint32_t slot = 0;

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	ck_assert_int_eq(pvtimer_host_requeue(a, 69), 0);
	memset(&it, 0xff, sizeof(it));
	pvtimer_host_pending_begin(a, &it);
	ck_assert(all_zero(it.reserved, sizeof(it.reserved)));
	ck_assert_int_eq(pvtimer_host_pending_next(a, &it, &slot), 1);
	ck_assert_uint_eq(slot, 69);
	ck_assert_int_eq(pvtimer_host_pending_next(a, &it, &slot), 0);
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(tsc_map_tail_is_zero_and_hand_made_maps_work)
{
	struct pvtimer_tsc_map m, hand = { .mult = 1, .offset = -500 };

	memset(&m, 0xff, sizeof(m));
	ck_assert_int_eq(pvtimer_tsc_map_init(&m, 2000000, 2000000, -500), 0);
	ck_assert_uint_eq(m.reserved, 0);
	ck_assert(all_zero(m.reserved_tail, sizeof(m.reserved_tail)));
	ck_assert_int_eq(memcmp(&m, &hand, sizeof(m)), 0);
	ck_assert_uint_eq(pvtimer_tsc_to_guest(&hand, 10500), 10000);
	ck_assert_uint_eq(pvtimer_tsc_to_host(&hand, 10000), 10500);
	memset(&m, 0xff, sizeof(m));
	ck_assert_int_eq(pvtimer_tsc_map_init(&m, 3000000, 2000000, 0), 0);
	ck_assert(all_zero(m.reserved_tail, sizeof(m.reserved_tail)));
}
END_TEST

/* A newer caller's larger stats struct: the counters this library does not
 * know read 0, whatever the caller left there. */
START_TEST(stats_zero_a_newer_callers_tail)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 1);
	struct {
		struct pvtimer_area_stats st;
		uint64_t future[3];
	} big;
	struct pvtimer_slot_snapshot snap;
	struct pvtimer_area *a = NULL;

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	ck_assert_int_eq(pvtimer_host_read_slot(a, 0, 1, &snap), 0);
	memset(&big, 0xff, sizeof(big));
	big.st.sz = sizeof(big);
	ck_assert_int_eq(pvtimer_area_get_stats(a, &big.st), 0);
	ck_assert_uint_eq(big.st.sz, sizeof(big));
	ck_assert_uint_eq(big.st.slot_reads, 1);
	ck_assert(all_zero(big.future, sizeof(big.future)));
	pvtimer_area_destroy(a);
}
END_TEST

static Suite *growth_suite(void)
{
	Suite *s = suite_create("pvtimer-growth");
	TCase *tc = tcase_create("growth");

	tcase_add_test(tc, snapshot_is_written_whole);
	tcase_add_test(tc, iterator_is_initialised_whole);
	tcase_add_test(tc, tsc_map_tail_is_zero_and_hand_made_maps_work);
	tcase_add_test(tc, stats_zero_a_newer_callers_tail);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(growth_suite)
