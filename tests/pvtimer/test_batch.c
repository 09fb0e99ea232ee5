/* SPDX-License-Identifier: MIT */
/* The batch host calls of 1.2: take_pending_mask, requeue_mask, read_slots.
 * Same answers as the per-slot calls, nothing written to guest memory when
 * nothing is pending, hostile bitmaps bounded, bad arguments refused with
 * nothing done, and no arm lost against guests arming concurrently. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../common/check_main.h"
#include "area_view.h"
#include "exitless/pvtimer.h"
#include "exitless/pvtimer_guest.h"

#define SLOTS 200u
#define WORDS ((SLOTS + 63) / 64)
#define NOW 5000000000ull
#define HORIZON 1000000000ull

static struct pvtimer_area *new_area(uint32_t slots)
{
	PVTIMER_AREA_OPTS(o, .slot_count = slots, .max_horizon_tsc = HORIZON);
	struct pvtimer_area *a = NULL;

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	return a;
}

START_TEST(take_mask_names_what_the_iterator_names)
{
	const uint32_t want[] = {0, 1, 63, 64, 65, 129, 199};
	struct pvtimer_area *a = new_area(SLOTS);
	uint64_t mask[WORDS] = {0}, expect[WORDS] = {0};

	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		ck_assert_int_eq(pvtimer_host_requeue(a, want[k]), 0);
		expect[want[k] / 64] |= 1ull << (want[k] % 64);
	}
	mask[0] = 1; /* already the caller's: kept, not counted */
	ck_assert_int_eq(pvtimer_host_take_pending_mask(a, mask, WORDS), 6);
	ck_assert_mem_eq(mask, expect, sizeof(mask));
	/* everything was taken: the summary and the words are clear */
	ck_assert_uint_eq(test_pending_of(a)->summary, 0);
	for (uint32_t w = 0; w < WORDS; w++)
		ck_assert_uint_eq(test_pending_of(a)->words[w], 0);
	ck_assert_int_eq(pvtimer_host_take_pending_mask(a, mask, WORDS), 0);
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(requeue_mask_round_trips)
{
	struct pvtimer_area *a = new_area(SLOTS);
	uint64_t mask[WORDS] = {0x8000000000000001ull, 0, 0x10, 0xff};
	uint64_t back[WORDS] = {0};
	struct pvtimer_pending_iter it;
	uint32_t s, n = 0;

	ck_assert_int_eq(pvtimer_host_requeue_mask(a, mask, WORDS), 0);
	/* a summary bit for each non-zero word, none for the empty one */
	ck_assert_uint_eq(test_pending_of(a)->summary, 0xd);
	ck_assert_int_eq(pvtimer_host_take_pending_mask(a, back, WORDS), 2 + 1 + 8);
	ck_assert_mem_eq(mask, back, sizeof(mask));
	/* and the iterator agrees with the mask calls */
	ck_assert_int_eq(pvtimer_host_requeue_mask(a, mask, WORDS), 0);
	pvtimer_host_pending_begin(a, &it);
	while (pvtimer_host_pending_next(a, &it, &s)) {
		ck_assert(mask[s / 64] & (1ull << (s % 64)));
		n++;
	}
	ck_assert_uint_eq(n, 11);
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(bad_arguments_do_nothing)
{
	struct pvtimer_area *a = new_area(SLOTS);
	uint64_t mask[WORDS + 1] = {0};
	uint64_t stray[WORDS + 1] = {0};
	uint32_t slots[2] = {3, SLOTS};
	struct pvtimer_slot_snapshot snaps[2];
	int rcs[2] = {42, 42};
	struct pvtimer_area_stats st = {.sz = sizeof(st)};

	pvtimer_host_requeue(a, 5);
	ck_assert_int_eq(pvtimer_host_take_pending_mask(NULL, mask, WORDS), -EINVAL);
	ck_assert_int_eq(pvtimer_host_take_pending_mask(a, NULL, WORDS), -EINVAL);
	ck_assert_int_eq(pvtimer_host_take_pending_mask(a, mask, WORDS - 1), -EINVAL);
	/* nothing was taken by the refused calls */
	ck_assert_uint_eq(test_pending_of(a)->summary, 1);
	ck_assert_uint_eq(test_pending_of(a)->words[0], 1ull << 5);
	/* a larger buffer is fine; its extra word is left alone */
	mask[WORDS] = 0xabcd;
	ck_assert_int_eq(pvtimer_host_take_pending_mask(a, mask, WORDS + 1), 1);
	ck_assert_uint_eq(mask[WORDS], 0xabcd);

	ck_assert_int_eq(pvtimer_host_requeue_mask(NULL, stray, WORDS), -EINVAL);
	ck_assert_int_eq(pvtimer_host_requeue_mask(a, NULL, WORDS), -EINVAL);
	ck_assert_int_eq(pvtimer_host_requeue_mask(a, stray, WORDS - 1), -EINVAL);
	/* a bit naming no slot (200 = 3*64 + 8), in the last word or past it:
	 * refused, and the valid bits beside it are not written either */
	stray[0] = 1;
	stray[3] = 1ull << 8;
	ck_assert_int_eq(pvtimer_host_requeue_mask(a, stray, WORDS), -EINVAL);
	stray[3] = 0;
	stray[WORDS] = 1;
	ck_assert_int_eq(pvtimer_host_requeue_mask(a, stray, WORDS + 1), -EINVAL);
	ck_assert_uint_eq(test_pending_of(a)->summary, 0);
	ck_assert_uint_eq(test_pending_of(a)->words[0], 0);

	ck_assert_int_eq(pvtimer_host_read_slots(NULL, slots, 1, NOW, snaps, rcs),
			 -EINVAL);
	ck_assert_int_eq(pvtimer_host_read_slots(a, NULL, 1, NOW, snaps, rcs), -EINVAL);
	ck_assert_int_eq(pvtimer_host_read_slots(a, slots, 1, NOW, NULL, rcs), -EINVAL);
	ck_assert_int_eq(pvtimer_host_read_slots(a, slots, 1, NOW, snaps, NULL),
			 -EINVAL);
	/* slot 3 is valid, SLOTS is not: nothing is read, not even slot 3 */
	ck_assert_int_eq(pvtimer_host_read_slots(a, slots, 2, NOW, snaps, rcs), -EINVAL);
	ck_assert_int_eq(rcs[0], 42);
	pvtimer_area_get_stats(a, &st);
	ck_assert_uint_eq(st.slot_reads, 0);
	ck_assert_int_eq(pvtimer_host_read_slots(a, NULL, 0, NOW, NULL, NULL), 0);
	pvtimer_area_destroy(a);
}
END_TEST

/* read_slots answers exactly what read_slot answers, slot by slot: an arm,
 * a cancel, a torn line, a rejected vector, a past deadline, a repeat. */
START_TEST(read_slots_is_read_slot_per_slot)
{
	struct pvtimer_area *batch = new_area(SLOTS), *single = new_area(SLOTS);
	const uint32_t slots[] = {7, 8, 9, 10, 11, 7, 150};
	const uint32_t n = sizeof(slots) / sizeof(slots[0]);
	struct pvtimer_slot_snapshot snaps[sizeof(slots) / sizeof(slots[0])];
	int rcs[sizeof(slots) / sizeof(slots[0])];
	struct pvtimer_area *both[] = {batch, single};
	struct pvtimer_area_stats sb = {.sz = sizeof(sb)}, ss = {.sz = sizeof(ss)};

	for (int k = 0; k < 2; k++) {
		test_arm_raw(test_slot_of(both[k], 7), NOW + 1000, 0xec, PVTIMER_ARM_ARMED);
		test_arm_raw(test_slot_of(both[k], 8), 0, 0, 0);
		test_slot_of(both[k], 9)->seq = 1; /* stuck mid-write */
		test_arm_raw(test_slot_of(both[k], 10), NOW + 1000, 0x10, PVTIMER_ARM_ARMED);
		test_arm_raw(test_slot_of(both[k], 11), NOW - 1, 0xec, PVTIMER_ARM_ARMED);
		test_arm_raw(test_slot_of(both[k], 150), NOW + HORIZON + 1, 0xec,
			PVTIMER_ARM_ARMED);
	}
	memset(snaps, 0x5a, sizeof(snaps)); /* written whole, whatever was there */
	ck_assert_int_eq(pvtimer_host_read_slots(batch, slots, n, NOW, snaps, rcs), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct pvtimer_slot_snapshot one;
		int rc = pvtimer_host_read_slot(single, slots[i], NOW, &one);

		ck_assert_int_eq(rcs[i], rc);
		ck_assert_mem_eq(&snaps[i], &one, sizeof(one));
		ck_assert_uint_eq(test_slot_of(batch, slots[i])->status_word,
				  test_slot_of(single, slots[i])->status_word);
	}
	ck_assert_int_eq(rcs[0], 0);
	ck_assert_int_eq(rcs[2], -EAGAIN);
	ck_assert_int_eq(rcs[3], -EINVAL);
	ck_assert_int_eq(rcs[6], -EINVAL);
	ck_assert_uint_eq(snaps[4].past, 1);
	pvtimer_area_get_stats(batch, &sb);
	pvtimer_area_get_stats(single, &ss);
	ck_assert_mem_eq(&sb, &ss, sizeof(sb));
	pvtimer_area_destroy(batch);
	pvtimer_area_destroy(single);
}
END_TEST

/* With nothing pending, a pass writes no guest line: the page holding the
 * pending block is made read-only, and a write would fault (the test
 * process dies; Check reports the test as failed). Before 1.2 the summary
 * was exchanged (a locked write) on every pass. */
START_TEST(nothing_pending_writes_nothing)
{
	size_t bytes = pvtimer_area_size_for(SLOTS);
	void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	PVTIMER_AREA_OPTS(o, .slot_count = SLOTS, .mem = mem, .mem_size = bytes);
	struct pvtimer_area *a = NULL;
	struct pvtimer_pending_iter it;
	uint64_t mask[WORDS] = {0};
	uint32_t s;

	ck_assert_ptr_ne(mem, MAP_FAILED);
	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	ck_assert_int_eq(mprotect(mem, 4096, PROT_READ), 0);
	ck_assert_int_eq(pvtimer_host_take_pending_mask(a, mask, WORDS), 0);
	pvtimer_host_pending_begin(a, &it);
	ck_assert_int_eq(pvtimer_host_pending_next(a, &it, &s), 0);
	ck_assert_int_eq(mprotect(mem, 4096, PROT_READ | PROT_WRITE), 0);
	/* and with something pending, both still take it */
	pvtimer_host_requeue(a, 70);
	ck_assert_int_eq(pvtimer_host_take_pending_mask(a, mask, WORDS), 1);
	ck_assert_uint_eq(mask[1], 1ull << 6);
	pvtimer_host_requeue(a, 70);
	pvtimer_host_pending_begin(a, &it);
	ck_assert_int_eq(pvtimer_host_pending_next(a, &it, &s), 1);
	ck_assert_uint_eq(s, 70);
	pvtimer_area_destroy(a);
	munmap(mem, bytes);
}
END_TEST

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* A hostile bitmap: only bits naming slots come out, each word is visited
 * once, what names no slot is counted and dropped, and the caller's buffer
 * past the area's words is never written. */
START_TEST(hostile_bitmap_is_bounded)
{
	struct pvtimer_area *a = new_area(SLOTS);
	struct pvtimer_abi_pending *p = test_pending_of(a);
	struct pvtimer_area_stats st = {.sz = sizeof(st)};
	uint64_t strays = 0;

	for (int round = 0; round < 2000; round++) {
		uint64_t mask[WORDS + 1] = {0, 0, 0, 0, 0x1234};
		uint64_t summary = rng() & rng(), words[64];
		int want = 0;

		for (uint32_t w = 0; w < 64; w++)
			words[w] = rng() & rng();
		memcpy((void *)p->words, words, WORDS * 8);
		p->summary = summary;
		strays += (summary >> WORDS) != 0;
		for (uint32_t w = 0; w < WORDS; w++) {
			uint64_t valid = w < WORDS - 1 ? ~0ull : (1ull << (SLOTS % 64)) - 1;

			if (!(summary & (1ull << w)))
				continue;
			want += __builtin_popcountll(words[w] & valid);
			strays += (words[w] & ~valid) != 0;
		}
		ck_assert_int_eq(pvtimer_host_take_pending_mask(a, mask, WORDS), want);
		ck_assert_uint_eq(mask[WORDS - 1] >> (SLOTS % 64), 0);
		ck_assert_uint_eq(mask[WORDS], 0x1234);
		/* words the summary did not name keep their bits (not visited) */
		for (uint32_t w = 0; w < WORDS; w++)
			if (!(summary & (1ull << w)))
				ck_assert_uint_eq(p->words[w], words[w]);
	}
	pvtimer_area_get_stats(a, &st);
	ck_assert_uint_eq(st.stray_pending, strays);
	pvtimer_area_destroy(a);
}
END_TEST

/* Guests arm their slots concurrently (pvtimer_guest_arm: word OR, then
 * the summary OR only when its bit is clear) while the host passes with
 * the batch calls, giving torn reads back with requeue_mask. When the
 * guests stop, one more pass finds every slot's last generation: no arm
 * was lost in the bitmap. Bounded by counts, not by time. */
#define CSLOTS 130u
#define CWORDS ((CSLOTS + 63) / 64)
#define GUESTS 2u
#define ARMS 20000u

static struct pvtimer_area *carea;
static int guests_left;
static uint32_t last_gen_written[CSLOTS];

struct guest_arg {
	uint32_t first; /* this thread's slots: first, first + GUESTS, ... */
};

static unsigned long long guest_tsc_value(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

static void *guest_main(void *p)
{
	const struct guest_arg *arg = p;
	static __thread struct pvtimer_guest g[CSLOTS];

	for (uint32_t s = arg->first; s < CSLOTS; s += GUESTS)
		ck_assert_int_eq(pvtimer_guest_init(&g[s], pvtimer_area_mem(carea),
						    pvtimer_area_bytes(carea), s, 0xec),
				 0);
	for (uint32_t i = 0; i < ARMS; i++)
		for (uint32_t s = arg->first; s < CSLOTS; s += GUESTS * 7) {
			uint32_t k = s + (i % 7) * GUESTS;

			if (k >= CSLOTS)
				continue;
			/* far deadline, promise far ahead: always held */
			pvtimer_guest_arm(&g[k], guest_tsc_value() + (1ull << 40));
			__atomic_store_n(&last_gen_written[k], g[k].gen,
					 __ATOMIC_RELAXED);
		}
	__atomic_fetch_sub(&guests_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

static uint32_t last_gen_read[CSLOTS];

static void host_pass(void)
{
	uint64_t mask[CWORDS] = {0}, torn[CWORDS] = {0};
	uint32_t slots[CSLOTS], n = 0;
	struct pvtimer_slot_snapshot snaps[CSLOTS];
	int rcs[CSLOTS];

	if (pvtimer_host_take_pending_mask(carea, mask, CWORDS) <= 0)
		return;
	for (uint32_t w = 0; w < CWORDS; w++)
		for (uint64_t b = mask[w]; b; b &= b - 1)
			slots[n++] = w * 64 + (uint32_t)__builtin_ctzll(b);
	ck_assert_int_eq(pvtimer_host_read_slots(carea, slots, n, guest_tsc_value(),
						 snaps, rcs), 0);
	for (uint32_t i = 0; i < n; i++) {
		if (rcs[i] == -EAGAIN) {
			torn[slots[i] / 64] |= 1ull << (slots[i] % 64);
			continue;
		}
		ck_assert_int_eq(rcs[i], 0);
		last_gen_read[slots[i]] = snaps[i].gen;
		pvtimer_host_ack(carea, slots[i], snaps[i].gen);
	}
	ck_assert_int_eq(pvtimer_host_requeue_mask(carea, torn, CWORDS), 0);
}

START_TEST(concurrent_guests_lose_no_arm)
{
	PVTIMER_AREA_OPTS(o, .slot_count = CSLOTS, .max_horizon_tsc = 1ull << 60);
	struct guest_arg args[GUESTS];
	pthread_t t[GUESTS];
	uint64_t now = guest_tsc_value();

	ck_assert_int_eq(pvtimer_area_new(&o, &carea), 0);
	ck_assert_int_eq(pvtimer_host_activate(carea, now + (1ull << 39), now), 0);
	host_pass(); /* activation marked every slot pending */
	guests_left = GUESTS;
	for (uint32_t k = 0; k < GUESTS; k++) {
		args[k].first = k;
		ck_assert_int_eq(pthread_create(&t[k], NULL, guest_main, &args[k]), 0);
	}
	while (__atomic_load_n(&guests_left, __ATOMIC_ACQUIRE))
		host_pass();
	for (uint32_t k = 0; k < GUESTS; k++)
		pthread_join(t[k], NULL);
	/* the guests are done: every arm's bit is in the bitmap or was taken;
	 * torn reads are requeued, so a few passes settle everything */
	for (int k = 0; k < 4; k++)
		host_pass();
	for (uint32_t s = 0; s < CSLOTS; s++)
		ck_assert_uint_eq(last_gen_read[s], last_gen_written[s]);
	pvtimer_area_destroy(carea);
}
END_TEST

static Suite *batch_suite(void)
{
	Suite *s = suite_create("pvtimer-batch");
	TCase *tc = tcase_create("batch");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, take_mask_names_what_the_iterator_names);
	tcase_add_test(tc, requeue_mask_round_trips);
	tcase_add_test(tc, bad_arguments_do_nothing);
	tcase_add_test(tc, read_slots_is_read_slot_per_slot);
	tcase_add_test(tc, nothing_pending_writes_nothing);
	tcase_add_test(tc, hostile_bitmap_is_bounded);
	tcase_add_test(tc, concurrent_guests_lose_no_arm);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(batch_suite)
