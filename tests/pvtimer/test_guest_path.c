/* SPDX-License-Identifier: MIT */
/* The guest's arm path of 1.2: the pre-check reads no clock (a pv arm reads
 * the TSC once), gives the reason the whole rule gives, and writes nothing
 * when it falls back; the summary OR is skipped when its bit is already set
 * (the word OR never is), and a host pass still finds the arm. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

static unsigned long long fake_tsc, tsc_reads;
#define PVTIMER_GUEST_READ_TSC()                                  \
	(__atomic_fetch_add(&tsc_reads, 1, __ATOMIC_RELAXED),     \
	 __atomic_load_n(&fake_tsc, __ATOMIC_RELAXED))

#include "../common/check_main.h"
#include "area_view.h"
#include "exitless/pvtimer.h"
#include "exitless/pvtimer_guest.h"

#define MARGIN 100u
#define HORIZON 1000000u
#define VEC 0xec
#define SLOT 70u /* word 1, bit 6: summary bit 1 */

static struct pvtimer_area *area;
static struct pvtimer_guest guest;

static void setup(void)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 130, .margin_tsc = MARGIN,
			  .max_horizon_tsc = HORIZON);

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

static struct pvtimer_abi_pending *pending(void)
{
	return test_pending_of(area);
}

static struct pvtimer_abi_slot *slot(void)
{
	return test_slot_of(area, SLOT);
}

/* Take everything pending (activation marked every slot). */
static int host_pass(uint32_t *gen)
{
	uint64_t mask[3] = {0};
	struct pvtimer_slot_snapshot snap;
	uint32_t s = SLOT;
	int rc, n = pvtimer_host_take_pending_mask(area, mask, 3);

	if (!(mask[SLOT / 64] & (1ull << (SLOT % 64))))
		return 0;
	ck_assert_int_eq(pvtimer_host_read_slots(area, &s, 1, fake_tsc, &snap, &rc), 0);
	ck_assert_int_eq(rc, 0);
	*gen = snap.gen;
	return n;
}

START_TEST(pv_arm_reads_the_clock_once)
{
	tsc_reads = 0;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	ck_assert_uint_eq(tsc_reads, 1);
}
END_TEST

/* Fallbacks the clock-free pre-check catches: the whole rule's reason,
 * nothing written (generation and bitmap untouched). */
START_TEST(precheck_falls_back_without_writing)
{
	const struct {
		uint64_t deadline;
		int reason;
	} cases[] = {
		{10000 + 1000 + MARGIN - 1, PVTIMER_GUEST_FALLBACK_TOO_CLOSE},
		{10000 + 500, PVTIMER_GUEST_FALLBACK_TOO_CLOSE},
		{10000 - 5, PVTIMER_GUEST_FALLBACK_PAST},
		{10000, PVTIMER_GUEST_FALLBACK_PAST},
	};
	uint32_t gen0 = slot()->arm_gen;
	uint32_t g;

	ck_assert_int_gt(host_pass(&g), 0); /* clear activation's bits */
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		ck_assert_int_eq(pvtimer_guest_arm(&guest, cases[k].deadline),
				 cases[k].reason);
		ck_assert_uint_eq(pvtimer_guest_hw_deadline(&guest), cases[k].deadline);
	}
	ck_assert_uint_eq(slot()->arm_gen, gen0);
	ck_assert_uint_eq(pending()->summary, 0);
	ck_assert_uint_eq(pending()->words[1], 0);
	/* not active: DISABLED, nothing written either */
	pvtimer_host_deactivate(area);
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000),
			 PVTIMER_GUEST_FALLBACK_DISABLED);
	ck_assert_uint_eq(slot()->arm_gen, gen0);
	ck_assert_uint_eq(pending()->summary, 0);
}
END_TEST

/* Fallbacks only the clock shows (a host late on its promise, a deadline
 * past the horizon): published, then withdrawn by the decisive check, with
 * the reason the 1.1 pre-check gave. */
START_TEST(clock_fallbacks_are_withdrawn_with_their_reason)
{
	uint32_t gen0 = slot()->arm_gen, g;

	fake_tsc = 10000 + 1001; /* the promise (11000) has passed */
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000),
			 PVTIMER_GUEST_FALLBACK_STALE);
	ck_assert_uint_eq(slot()->arm_gen, gen0 + 2);
	ck_assert_uint_eq(slot()->arm_flags & PVTIMER_ARM_ARMED, 0);
	ck_assert_uint_eq(pvtimer_guest_pv_deadline(&guest), 0);
	fake_tsc = 10000;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + HORIZON + 1),
			 PVTIMER_GUEST_FALLBACK_TOO_FAR);
	ck_assert_uint_eq(slot()->arm_gen, gen0 + 4);
	ck_assert_uint_eq(slot()->arm_flags & PVTIMER_ARM_ARMED, 0);
	/* the host sees the last publish: a cancel */
	ck_assert_int_gt(host_pass(&g), 0);
	ck_assert_uint_eq(g, gen0 + 4);
}
END_TEST

/* The summary bit is already set (a pass has not run since): the word
 * bit is ORed, the summary is not written at all (its page is made
 * read-only under the guest: a write would kill the test), and the next
 * pass finds the latest generation. */
START_TEST(summary_or_skipped_when_its_bit_is_set)
{
	uint64_t *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *real = guest.pending_summary;
	uint32_t g;

	ck_assert_ptr_ne(ro, MAP_FAILED);
	ck_assert_int_gt(host_pass(&g), 0);
	/* first arm after a pass: the bit is clear, so it is ORed */
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 5000), PVTIMER_GUEST_PV);
	ck_assert_uint_eq(pending()->summary, 1ull << (SLOT / 64));
	ck_assert_uint_eq(pending()->words[1], 1ull << (SLOT % 64));
	/* white box: the guest's summary pointer aimed at a read-only copy
	 * with the bit set */
	ro[0] = 1ull << (SLOT / 64);
	ck_assert_int_eq(mprotect(ro, 4096, PROT_READ), 0);
	guest.pending_summary = ro;
	pending()->words[1] = 0; /* so the word OR shows */
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 6000), PVTIMER_GUEST_PV);
	ck_assert_uint_eq(pending()->words[1], 1ull << (SLOT % 64));
	guest.pending_summary = real;
	ck_assert_int_eq(pvtimer_guest_arm(&guest, fake_tsc + 7000), PVTIMER_GUEST_PV);
	/* one pass finds the slot once, at its latest generation */
	ck_assert_int_eq(host_pass(&g), 1);
	ck_assert_uint_eq(g, slot()->arm_gen);
	ck_assert_uint_eq(pending()->summary, 0);
	munmap(ro, 4096);
}
END_TEST

static Suite *guest_path_suite(void)
{
	Suite *s = suite_create("pvtimer-guest-path");
	TCase *tc = tcase_create("guest-path");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, pv_arm_reads_the_clock_once);
	tcase_add_test(tc, precheck_falls_back_without_writing);
	tcase_add_test(tc, clock_fallbacks_are_withdrawn_with_their_reason);
	tcase_add_test(tc, summary_or_skipped_when_its_bit_is_set);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(guest_path_suite)
