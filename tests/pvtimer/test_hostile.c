/* SPDX-License-Identifier: MIT */
/* Guest memory is hostile input: whatever bytes the guest writes, the host
 * side neither crashes nor trusts them, and every pass is bounded. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/check_main.h"
#include "area_view.h"
#include "exitless/pvtimer.h"

#define SLOTS 200u
#define HORIZON 1000000000ull
#define NOW 5000000000ull

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static struct pvtimer_area *new_area(void)
{
	PVTIMER_AREA_OPTS(o, .slot_count = SLOTS, .max_horizon_tsc = HORIZON,
			  .vector_min = 0x40, .vector_max = 0xef);
	struct pvtimer_area *a = NULL;

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	return a;
}

/* Every snapshot the host accepts must satisfy the limits it was given. */
static void check_accepted(struct pvtimer_area *a, uint32_t i)
{
	struct pvtimer_slot_snapshot snap;
	int err = pvtimer_host_read_slot(a, i, NOW, &snap);

	ck_assert(err == 0 || err == -EINVAL || err == -EAGAIN);
	if (err || !snap.armed)
		return;
	ck_assert_uint_ge(snap.vector, 0x40);
	ck_assert_uint_le(snap.vector, 0xef);
	/* modular: at most the horizon ahead; behind now by any amount is
	 * a past deadline, due at once */
	ck_assert_int_le((int64_t)(snap.deadline_tsc - NOW), (int64_t)HORIZON);
	ck_assert_uint_eq(snap.past, (int64_t)(snap.deadline_tsc - NOW) <= 0);
}

START_TEST(random_bytes_over_everything)
{
	struct pvtimer_area *a = new_area();
	uint64_t *words = pvtimer_area_mem(a);
	size_t n = pvtimer_area_bytes(a) / 8;

	for (int round = 0; round < 2000; round++) {
		struct pvtimer_pending_iter it;
		uint32_t s, steps = 0;

		for (size_t k = 0; k < n; k++)
			words[k] = rng() & rng(); /* bias to sparse bits too */
		pvtimer_host_publish(a, NOW + 1000, NOW);
		pvtimer_host_pending_begin(a, &it);
		while (pvtimer_host_pending_next(a, &it, &s)) {
			ck_assert_uint_lt(s, SLOTS);
			ck_assert_uint_le(++steps, SLOTS);
			check_accepted(a, s);
		}
		ck_assert_uint_le(it.visited_words, (SLOTS + 63) / 64);
		for (uint32_t i = 0; i < SLOTS; i++)
			check_accepted(a, i);
	}
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(each_bad_field_is_rejected_and_counted)
{
	struct pvtimer_area *a = new_area();
	struct pvtimer_abi_slot *s = test_slot_of(a, 7);
	struct pvtimer_slot_snapshot snap;
	struct pvtimer_area_stats st = {.sz = sizeof(st)};
	const struct {
		uint64_t deadline;
		uint8_t vector, flags, reason;
	} cases[] = {
		{NOW + 10, 0x3f, PVTIMER_ARM_ARMED, PVTIMER_REJECT_VECTOR},
		{NOW + 10, 0xf0, PVTIMER_ARM_ARMED, PVTIMER_REJECT_VECTOR},
		{NOW + 10, 0x50, 0x81, PVTIMER_REJECT_FLAGS},
		{NOW + (1ull << 62), 0x50, PVTIMER_ARM_ARMED, PVTIMER_REJECT_FAR},
		{NOW + HORIZON + 1, 0x50, PVTIMER_ARM_ARMED, PVTIMER_REJECT_FAR},
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		test_arm_raw(s, cases[k].deadline, cases[k].vector, cases[k].flags);
		ck_assert_int_eq(pvtimer_host_read_slot(a, 7, NOW, &snap), -EINVAL);
		ck_assert_uint_eq(snap.reject, cases[k].reason);
		ck_assert_uint_eq(snap.armed, 0);
		ck_assert_uint_eq(PVTIMER_STATUS_CODE(s->status_word),
				  PVTIMER_STATUS_REJECTED);
		ck_assert_uint_eq(PVTIMER_STATUS_REASON(s->status_word),
				  cases[k].reason);
		ck_assert_uint_eq(PVTIMER_STATUS_GEN(s->status_word), s->arm_gen);
	}
	/* past is legitimate, by any amount (the guest raced, or the host
	 * stalled): fire now, counted; never rejected (1.1) */
	test_arm_raw(s, NOW - 5, 0x50, PVTIMER_ARM_ARMED);
	ck_assert_int_eq(pvtimer_host_read_slot(a, 7, NOW, &snap), 0);
	ck_assert_uint_eq(snap.past, 1);
	test_arm_raw(s, 0, 0x50, PVTIMER_ARM_ARMED);
	ck_assert_int_eq(pvtimer_host_read_slot(a, 7, NOW, &snap), 0);
	ck_assert_uint_eq(snap.past, 1);
	test_arm_raw(s, UINT64_MAX, 0x50, PVTIMER_ARM_ARMED);
	ck_assert_int_eq(pvtimer_host_read_slot(a, 7, NOW, &snap), 0);
	ck_assert_uint_eq(snap.past, 1);
	/* a cancel with garbage in the other fields is still a cancel, and
	 * so is one with unknown flag bits (a withdrawal is never refused) */
	test_arm_raw(s, UINT64_MAX, 0, 0);
	ck_assert_int_eq(pvtimer_host_read_slot(a, 7, NOW, &snap), 0);
	ck_assert_uint_eq(snap.armed, 0);
	test_arm_raw(s, UINT64_MAX, 0, 0x80);
	ck_assert_int_eq(pvtimer_host_read_slot(a, 7, NOW, &snap), 0);
	ck_assert_uint_eq(snap.armed, 0);
	ck_assert_uint_eq(snap.reject, PVTIMER_REJECT_NONE);
	ck_assert_int_eq(pvtimer_host_read_slot(a, SLOTS, NOW, &snap), -ERANGE);
	pvtimer_area_get_stats(a, &st);
	ck_assert_uint_eq(st.rejected_vector, 2);
	ck_assert_uint_eq(st.rejected_flags, 1);
	ck_assert_uint_eq(st.rejected_far, 2);
	ck_assert_uint_eq(st.rejected_past, 0);
	ck_assert_uint_eq(st.past_deadlines, 3);
	ck_assert_uint_eq(st.slot_reads, 10);
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(stuck_seqlock_costs_bounded_reads)
{
	struct pvtimer_area *a = new_area();
	struct pvtimer_abi_slot *s = test_slot_of(a, 3);
	struct pvtimer_slot_snapshot snap;
	struct pvtimer_area_stats st = {.sz = sizeof(st)};

	s->seq = 1; /* a guest that never finishes writing */
	ck_assert_int_eq(pvtimer_host_read_slot(a, 3, NOW, &snap), -EAGAIN);
	pvtimer_area_get_stats(a, &st);
	ck_assert_uint_eq(st.torn_reads, 1);
	s->seq = 2;
	ck_assert_int_eq(pvtimer_host_read_slot(a, 3, NOW, &snap), 0);
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(stray_pending_bits_are_dropped)
{
	struct pvtimer_area *a = new_area();
	const struct pvtimer_abi_header *h = pvtimer_area_mem(a);
	struct pvtimer_abi_pending *p =
		(void *)((char *)pvtimer_area_mem(a) + h->pending_offset);
	struct pvtimer_area_stats st = {.sz = sizeof(st)};
	struct pvtimer_pending_iter it;
	uint32_t s, n = 0;

	p->summary = ~0ull;  /* words 4..63 do not exist */
	p->words[3] = ~0ull; /* only 8 of these 64 slots exist (200 = 3*64+8) */
	pvtimer_host_pending_begin(a, &it);
	while (pvtimer_host_pending_next(a, &it, &s)) {
		ck_assert_uint_ge(s, 192);
		ck_assert_uint_lt(s, SLOTS);
		n++;
	}
	ck_assert_uint_eq(n, 8);
	pvtimer_area_get_stats(a, &st);
	ck_assert_uint_eq(st.stray_pending, 2);
	pvtimer_area_destroy(a);
}
END_TEST

/* A guest thread scribbling over its slot and the bitmap, with atomics as a
 * real vCPU's stores are, while the host keeps reading. */
static int scribbling;

static void *scribbler(void *arg)
{
	struct pvtimer_area *a = arg;
	uint64_t *w = pvtimer_area_mem(a);
	size_t n = pvtimer_area_bytes(a) / 8;
	uint64_t x = 88172645463325252ull;

	while (__atomic_load_n(&scribbling, __ATOMIC_RELAXED)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* leave the header alone half the time so slots look plausible */
		__atomic_store_n(&w[32 + x % (n - 32)], x & (x >> 3),
				 __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(concurrent_scribbling_guest)
{
	struct pvtimer_area *a = new_area();
	pthread_t t;

	scribbling = 1;
	ck_assert_int_eq(pthread_create(&t, NULL, scribbler, a), 0);
	for (int round = 0; round < 3000; round++) {
		struct pvtimer_pending_iter it;
		uint32_t s, steps = 0;

		pvtimer_host_pending_begin(a, &it);
		while (pvtimer_host_pending_next(a, &it, &s)) {
			ck_assert_uint_le(++steps, SLOTS);
			check_accepted(a, s);
		}
	}
	__atomic_store_n(&scribbling, 0, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	pvtimer_area_destroy(a);
}
END_TEST

static Suite *hostile_suite(void)
{
	Suite *s = suite_create("pvtimer-hostile");
	TCase *tc = tcase_create("hostile");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, random_bytes_over_everything);
	tcase_add_test(tc, each_bad_field_is_rejected_and_counted);
	tcase_add_test(tc, stuck_seqlock_costs_bounded_reads);
	tcase_add_test(tc, stray_pending_bits_are_dropped);
	tcase_add_test(tc, concurrent_scribbling_guest);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(hostile_suite)
