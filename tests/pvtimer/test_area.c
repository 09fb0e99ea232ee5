/* SPDX-License-Identifier: MIT */
/* Area creation, sizing, sealing, adoption and option checking. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/check_main.h"
#include "exitless/pvtimer.h"

START_TEST(size_is_whole_pages)
{
	ck_assert_uint_eq(pvtimer_area_size_for(0), 0);
	ck_assert_uint_eq(pvtimer_area_size_for(PVTIMER_ABI_MAX_SLOTS + 1), 0);
	ck_assert_uint_eq(pvtimer_area_size_for(1), 4096);
	/* 256 header + 64 summary + 64 words, slots from 384: 29 fit a page */
	ck_assert_uint_eq(pvtimer_area_size_for(29), 4096);
	ck_assert_uint_eq(pvtimer_area_size_for(30), 8192);
	ck_assert_uint_eq(pvtimer_area_size_for(4096) % 4096, 0);
	ck_assert_uint_ge(pvtimer_area_size_for(4096), 4096u * 128);
}
END_TEST

START_TEST(memfd_area_is_sealed_and_initialised)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 100, .tsc_khz = 2000000,
			  .margin_tsc = 777, .features = PVTIMER_F_FIRED_TSC);
	struct pvtimer_area *a = NULL;
	const struct pvtimer_abi_header *h;
	const struct pvtimer_abi_slot *s;
	int fd;

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	fd = pvtimer_area_fd(a);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW),
			 F_SEAL_SHRINK | F_SEAL_GROW);
	ck_assert_int_ne(ftruncate(fd, 0), 0);
	h = pvtimer_area_mem(a);
	ck_assert_uint_eq(h->magic, PVTIMER_ABI_MAGIC);
	ck_assert_uint_eq(h->abi_major, 1);
	ck_assert_uint_eq(h->slot_count, 100);
	ck_assert_uint_eq(h->pending_words, 2);
	ck_assert_uint_eq(h->margin_tsc, 777);
	ck_assert_uint_eq(h->features, PVTIMER_F_FIRED_TSC | PVTIMER_F_VECTOR_RANGE);
	ck_assert_uint_eq(h->abi_minor, 1);
	ck_assert_uint_eq(h->vector_min, PVTIMER_VECTOR_MIN);
	ck_assert_uint_eq(h->vector_max, PVTIMER_VECTOR_MAX);
	/* default horizon: one hour at the given rate */
	ck_assert_uint_eq(h->max_horizon_tsc, 2000000ull * 1000 * 3600);
	ck_assert_uint_eq(h->host_flags, 0);
	ck_assert_uint_eq(h->next_sync_tsc, PVTIMER_SYNC_NEVER);
	ck_assert_uint_eq(h->area_size, pvtimer_area_bytes(a));
	s = (const void *)((const char *)h + h->slots_offset + 99 * 128);
	ck_assert_uint_eq(s->next_sync_tsc, PVTIMER_SYNC_FOLLOW_AREA);
	ck_assert_int_eq(pvtimer_area_validate(h, pvtimer_area_bytes(a)), 0);
	pvtimer_area_destroy(a);
	pvtimer_area_destroy(NULL);
}
END_TEST

START_TEST(caller_memory_is_used_and_left_alone)
{
	size_t bytes = pvtimer_area_size_for(8);
	void *mem = aligned_alloc(4096, bytes);
	PVTIMER_AREA_OPTS(o, .slot_count = 8, .mem = mem, .mem_size = bytes);
	struct pvtimer_area *a = NULL;

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	ck_assert_ptr_eq(pvtimer_area_mem(a), mem);
	ck_assert_int_eq(pvtimer_area_fd(a), -ENOENT);
	pvtimer_area_destroy(a);
	ck_assert_uint_eq(((struct pvtimer_abi_header *)mem)->magic,
			  PVTIMER_ABI_MAGIC);
	o.mem_size = bytes - 1;
	ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	o.mem_size = bytes;
	o.mem = (char *)mem + 8;
	ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	free(mem);
}
END_TEST

START_TEST(bad_options_are_einval)
{
	struct {
		struct pvtimer_area_opts o;
		uint64_t future_field;
	} big;
	struct pvtimer_area *a = NULL;
	PVTIMER_AREA_OPTS(o, .slot_count = 0);

	/* padding included: the tail is checked from the last known field */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.slot_count = 1;

	ck_assert_int_eq(pvtimer_area_new(NULL, &a), -EINVAL);
	ck_assert_int_eq(pvtimer_area_new(&o, NULL), -EINVAL);
	ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	o.slot_count = PVTIMER_ABI_MAX_SLOTS + 1;
	ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	o.slot_count = 1;
	o.features = 1ull << 63;
	ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	o.features = 0;
	o.vector_min = 8;
	ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	o.vector_min = 0x80;
	o.vector_max = 0x40;
	ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	o.vector_min = o.vector_max = 0;
	o.flags = 1u << 7;
	ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	/* A larger struct from a newer caller: zero tail is fine, non-zero not. */
	ck_assert_int_eq(pvtimer_area_new(&big.o, &a), 0);
	pvtimer_area_destroy(a);
	big.future_field = 1;
	ck_assert_int_eq(pvtimer_area_new(&big.o, &a), -EINVAL);
}
END_TEST

START_TEST(validate_rejects_corruption)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 64);
	struct pvtimer_area *a = NULL;
	struct pvtimer_abi_header *h;
	size_t bytes;

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	h = pvtimer_area_mem(a);
	bytes = pvtimer_area_bytes(a);
	ck_assert_int_eq(pvtimer_area_validate(NULL, bytes), -EINVAL);
	ck_assert_int_eq(pvtimer_area_validate(h, 100), -EINVAL);
	ck_assert_int_eq(pvtimer_area_validate(h, bytes - 1), -EINVAL);
	h->abi_major = 2;
	ck_assert_int_eq(pvtimer_area_validate(h, bytes), -EPROTONOSUPPORT);
	h->abi_major = 1;
	h->slots_offset += 64;
	ck_assert_int_eq(pvtimer_area_validate(h, bytes), -EINVAL);
	h->slots_offset -= 64;
	h->slot_count = 5000;
	ck_assert_int_eq(pvtimer_area_validate(h, bytes), -EINVAL);
	h->slot_count = 64;
	h->magic ^= 1;
	ck_assert_int_eq(pvtimer_area_validate(h, bytes), -EINVAL);
	h->magic ^= 1;
	ck_assert_int_eq(pvtimer_area_validate(h, bytes), 0);
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(adopt_keeps_a_restored_area)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 3, .margin_tsc = 5);
	struct pvtimer_area *a = NULL, *b = NULL;
	size_t bytes;
	void *copy;

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	bytes = pvtimer_area_bytes(a);
	copy = aligned_alloc(4096, bytes);
	memcpy(copy, pvtimer_area_mem(a), bytes); /* "the snapshot" */
	((struct pvtimer_abi_header *)copy)->host_flags = PVTIMER_HOST_ACTIVE;
	{
		PVTIMER_AREA_OPTS(r, .mem = copy, .mem_size = bytes,
				  .flags = PVTIMER_AREA_ADOPT);
		ck_assert_int_eq(pvtimer_area_new(&r, &b), 0);
		ck_assert_uint_eq(pvtimer_area_slot_count(b), 3);
		/* adoption does not rewrite what the guest might be reading */
		ck_assert_uint_eq(((struct pvtimer_abi_header *)copy)->margin_tsc, 5);
		ck_assert_uint_eq(((struct pvtimer_abi_header *)copy)->host_flags,
				  PVTIMER_HOST_ACTIVE);
		pvtimer_area_destroy(b);
		r.slot_count = 3;
		ck_assert_int_eq(pvtimer_area_new(&r, &b), -EINVAL);
		r.slot_count = 0;
		((struct pvtimer_abi_header *)copy)->magic = 0;
		ck_assert_int_eq(pvtimer_area_new(&r, &b), -EINVAL);
	}
	free(copy);
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(stats_honour_caller_size)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 1);
	struct pvtimer_area *a = NULL;
	struct pvtimer_area_stats st;
	struct {
		size_t sz;
		uint64_t slot_reads;
		uint64_t canary;
	} small = {offsetof(struct pvtimer_area_stats, torn_reads), 9, 42};

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	st.sz = 1;
	ck_assert_int_eq(pvtimer_area_get_stats(a, &st), -EINVAL);
	ck_assert_int_eq(pvtimer_area_get_stats(a, NULL), -EINVAL);
	ck_assert_int_eq(pvtimer_area_get_stats(a, (void *)&small), 0);
	ck_assert_uint_eq(small.slot_reads, 0);
	ck_assert_uint_eq(small.canary, 42);
	pvtimer_area_destroy(a);
}
END_TEST

static Suite *area_suite(void)
{
	Suite *s = suite_create("pvtimer-area");
	TCase *tc = tcase_create("area");

	tcase_add_test(tc, size_is_whole_pages);
	tcase_add_test(tc, memfd_area_is_sealed_and_initialised);
	tcase_add_test(tc, caller_memory_is_used_and_left_alone);
	tcase_add_test(tc, bad_options_are_einval);
	tcase_add_test(tc, validate_rejects_corruption);
	tcase_add_test(tc, adopt_keeps_a_restored_area);
	tcase_add_test(tc, stats_honour_caller_size);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(area_suite)
