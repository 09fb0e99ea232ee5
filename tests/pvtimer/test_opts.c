/* SPDX-License-Identifier: MIT */
/* Options structs that can grow (libbpf's rules): the bytes after the last
 * known field are checked from the end of that field, not from sizeof, so
 * dirty tail padding is refused; the declaring macro zeroes the padding; a
 * newer caller's zero tail is accepted; an older caller's shorter struct
 * gets the defaults of the fields it does not have. */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "../common/check_main.h"
#include "exitless/pvtimer.h"

#define OFFSETOFEND(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#define KNOWN_END OFFSETOFEND(struct pvtimer_area_opts, vector_max)

/* The struct must have tail padding for the padding tests to mean much. */
_Static_assert(KNOWN_END < sizeof(struct pvtimer_area_opts),
	       "pvtimer_area_opts has no tail padding: adjust the tests");

/* Leave a recognisable pattern where the next call's locals will live. */
static __attribute__((noinline)) void dirty_stack(void)
{
	volatile unsigned char junk[4096];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = 0xa5;
}

static __attribute__((noinline)) int macro_padding_is_zero(void)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 2, .vector_max = 0xf0);
	const unsigned char *b = (const unsigned char *)&o;

	if (o.sz != sizeof(o) || o.slot_count != 2 || o.vector_max != 0xf0 ||
	    o.flags || o.vector_min || o.mem)
		return 0;
	for (size_t i = KNOWN_END; i < sizeof(o); i++)
		if (b[i])
			return 0;
	return 1;
}

START_TEST(macro_zeroes_padding)
{
	dirty_stack();
	ck_assert(macro_padding_is_zero());
}
END_TEST

/* One struct, all bytes under the test's control. */
static void fill(struct pvtimer_area_opts *o, unsigned char byte, size_t sz)
{
	memset(o, byte, sizeof(*o));
	memset(o, 0, sz < sizeof(*o) ? sz : sizeof(*o));
	o->sz = sz;
	if (sz >= offsetof(struct pvtimer_area_opts, flags))
		o->slot_count = 2;
}

START_TEST(dirty_tail_padding_is_einval)
{
	struct pvtimer_area_opts o;
	struct pvtimer_area *a = NULL;

	fill(&o, 0, sizeof(o));
	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	pvtimer_area_destroy(a);
	/* a 1.0 check from sizeof would accept every one of these */
	for (size_t i = KNOWN_END; i < sizeof(o); i++) {
		fill(&o, 0, sizeof(o));
		((unsigned char *)&o)[i] = 1;
		ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	}
}
END_TEST

START_TEST(newer_caller_larger_sz)
{
	struct {
		struct pvtimer_area_opts o;
		uint64_t future[2];
	} big;
	struct pvtimer_area *a = NULL;

	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.slot_count = 1;
	ck_assert_int_eq(pvtimer_area_new(&big.o, &a), 0);
	pvtimer_area_destroy(a);
	big.future[1] = 1ull << 63; /* a field this library does not know */
	ck_assert_int_eq(pvtimer_area_new(&big.o, &a), -EINVAL);
	big.future[1] = 0;
	((unsigned char *)&big.o)[sizeof(big.o) - 1] = 0x80; /* dirty padding */
	ck_assert_int_eq(pvtimer_area_new(&big.o, &a), -EINVAL);
}
END_TEST

/* An older caller whose struct ends after flags (sz = offsetofend(flags)):
 * whatever lies beyond (here 0xff, which as vector_min would be invalid) is
 * not its struct and is not read: defaults apply. (1.0's struct had the
 * same 64-byte sizeof as 1.1's, vector_min/max sitting in its unchecked
 * padding; 1.0 never shipped, and from 1.1 on that padding is checked, so
 * the rule holds for every caller 1.1 accepts.) */
START_TEST(older_caller_smaller_sz_gets_defaults)
{
	const struct pvtimer_abi_header *h;
	struct pvtimer_area_opts o;
	struct pvtimer_area *a = NULL;

	fill(&o, 0xff, OFFSETOFEND(struct pvtimer_area_opts, flags));
	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	h = pvtimer_area_mem(a);
	ck_assert_uint_eq(h->vector_min, PVTIMER_VECTOR_MIN);
	ck_assert_uint_eq(h->vector_max, PVTIMER_VECTOR_MAX);
	ck_assert_uint_eq(pvtimer_area_slot_count(a), 2);
	pvtimer_area_destroy(a);
	/* one with no flags either: flags read as 0 */
	fill(&o, 0xff, offsetof(struct pvtimer_area_opts, flags));
	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	pvtimer_area_destroy(a);
	/* below the oldest struct there is no valid caller */
	fill(&o, 0, offsetof(struct pvtimer_area_opts, flags) - 1);
	ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
}
END_TEST

static Suite *opts_suite(void)
{
	Suite *s = suite_create("pvtimer-opts");
	TCase *tc = tcase_create("opts");

	tcase_add_test(tc, macro_zeroes_padding);
	tcase_add_test(tc, dirty_tail_padding_is_einval);
	tcase_add_test(tc, newer_caller_larger_sz);
	tcase_add_test(tc, older_caller_smaller_sz_gets_defaults);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(opts_suite)
