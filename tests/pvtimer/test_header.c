/* SPDX-License-Identifier: MIT */
/* The header against a hostile guest: adopt copies it once (a guest
 * changing slot_count mid-adopt made 1.0 write past the mapping), the host
 * keeps ACTIVE and the epoch to itself, and guest and host accept exactly
 * the same geometries. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/check_main.h"
#include "exitless/pvtimer.h"
#include "exitless/pvtimer_guest.h"

struct flipper {
	struct pvtimer_abi_header *h;
	int stop;
};

/* The guest's half of the race: slot_count toggles between the value that
 * fits the mapping and the largest one. */
static void *flip_slot_count(void *arg)
{
	struct flipper *f = arg;
	uint32_t v = 1;

	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		v = v == 1 ? PVTIMER_ABI_MAX_SLOTS : 1;
		__atomic_store_n(&f->h->slot_count, v, __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(adopt_uses_one_copy_of_the_header)
{
	size_t bytes = pvtimer_area_size_for(1);
	void *mem = aligned_alloc(4096, bytes);
	struct flipper f = {.h = mem};
	pthread_t th;
	int ok = 0;

	ck_assert_ptr_nonnull(mem);
	{
		PVTIMER_AREA_OPTS(o, .slot_count = 1, .mem = mem, .mem_size = bytes);
		struct pvtimer_area *a;

		ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
		pvtimer_area_destroy(a);
	}
	pthread_create(&th, NULL, flip_slot_count, &f);
	for (int i = 0; i < 20000; i++) {
		PVTIMER_AREA_OPTS(o, .flags = PVTIMER_AREA_ADOPT, .mem = mem,
				  .mem_size = bytes);
		struct pvtimer_area *a = NULL;
		int rc = pvtimer_area_new(&o, &a);

		ck_assert(rc == 0 || rc == -EINVAL);
		if (rc)
			continue;
		ok++;
		/* whatever the guest writes now, the host uses its copy */
		ck_assert_uint_eq(pvtimer_area_slot_count(a), 1);
		ck_assert_uint_eq(pvtimer_area_bytes(a), bytes);
		pvtimer_host_activate(a, 1000, 0);
		pvtimer_host_deactivate(a);
		pvtimer_area_destroy(a);
	}
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	ck_assert_int_gt(ok, 0);
	free(mem);
}
END_TEST

START_TEST(host_state_is_not_read_back)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 2);
	struct pvtimer_area *a;
	struct pvtimer_abi_header *h;

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	h = pvtimer_area_mem(a);
	pvtimer_host_activate(a, 1000, 10);
	ck_assert_uint_eq(h->host_epoch, 1);
	/* a guest clears ACTIVE and scribbles the epoch: the host keeps
	 * publishing (1.0 stopped publishing while still promising) */
	h->host_flags = 0;
	h->host_epoch = 777;
	pvtimer_host_publish(a, 5000, 20);
	ck_assert_uint_eq(h->next_sync_tsc, 5000);
	ck_assert_uint_eq(h->heartbeat_tsc, 20);
	pvtimer_host_deactivate(a);
	h->host_flags = PVTIMER_HOST_ACTIVE; /* nor does a guest revive it */
	pvtimer_host_publish(a, 9000, 30);
	ck_assert_uint_eq(h->next_sync_tsc, PVTIMER_SYNC_NEVER);
	pvtimer_host_activate(a, 1000, 40);
	ck_assert_uint_eq(h->host_epoch, 2);
	ck_assert_uint_eq(h->host_flags, PVTIMER_HOST_ACTIVE);
	/* a promise is never the NEVER or FOLLOW sentinel */
	pvtimer_host_publish(a, 0, 50);
	ck_assert_uint_ne(h->next_sync_tsc, PVTIMER_SYNC_NEVER);
	pvtimer_host_publish(a, UINT64_MAX, 50);
	ck_assert_uint_ne(h->next_sync_tsc, PVTIMER_SYNC_FOLLOW_AREA);
	pvtimer_area_destroy(a);
}
END_TEST

/* One definition of a valid area: each corruption that 1.0's guest
 * accepted (stride 192, header_size 512, pending_offset 0, overlapping
 * slots, area_size below the mapping) is refused by both sides. */
START_TEST(guest_and_host_agree_on_geometry)
{
	PVTIMER_AREA_OPTS(o, .slot_count = 100);
	struct pvtimer_area *a;
	struct pvtimer_abi_header *h, saved;
	struct pvtimer_guest g;
	size_t bytes;
	const struct {
		size_t off;
		uint32_t value;
	} bad[] = {
		{offsetof(struct pvtimer_abi_header, slot_stride), 192},
		{offsetof(struct pvtimer_abi_header, header_size), 512},
		{offsetof(struct pvtimer_abi_header, pending_offset), 0},
		{offsetof(struct pvtimer_abi_header, slots_offset), 0x140},
		{offsetof(struct pvtimer_abi_header, area_size), 8192},
		{offsetof(struct pvtimer_abi_header, area_size), 65536},
		{offsetof(struct pvtimer_abi_header, pending_words), 1},
		{offsetof(struct pvtimer_abi_header, slot_count), 0},
		{offsetof(struct pvtimer_abi_header, slot_count), 4097},
	};

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	h = pvtimer_area_mem(a);
	bytes = pvtimer_area_bytes(a);
	saved = *h;
	ck_assert_int_eq(pvtimer_guest_init(&g, h, bytes, 0, 0x40), 0);
	ck_assert_int_eq(pvtimer_area_validate(h, bytes), 0);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		memcpy((char *)h + bad[k].off, &bad[k].value, sizeof(uint32_t));
		ck_assert_int_eq(pvtimer_guest_init(&g, h, 1u << 20, 0, 0x40),
				 PVTIMER_GUEST_EINVAL);
		ck_assert_int_eq(pvtimer_area_validate(h, 1u << 20), -EINVAL);
		*h = saved;
	}
	/* a mapping smaller than the area */
	ck_assert_int_eq(pvtimer_guest_init(&g, h, bytes - 4096, 0, 0x40),
			 PVTIMER_GUEST_EINVAL);
	ck_assert_int_eq(pvtimer_area_validate(h, bytes - 4096), -EINVAL);
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(options_out_of_range)
{
	struct pvtimer_area *a = NULL;

	{
		PVTIMER_AREA_OPTS(o, .slot_count = 1,
				  .max_horizon_tsc = (1ull << 62) + 1);
		ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	}
	{
		PVTIMER_AREA_OPTS(o, .slot_count = 1, .features = 1ull << 40);
		ck_assert_int_eq(pvtimer_area_new(&o, &a), -EINVAL);
	}
	ck_assert_ptr_null(a);
}
END_TEST

static Suite *header_suite(void)
{
	Suite *s = suite_create("pvtimer-header");
	TCase *tc = tcase_create("header");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, adopt_uses_one_copy_of_the_header);
	tcase_add_test(tc, host_state_is_not_read_back);
	tcase_add_test(tc, guest_and_host_agree_on_geometry);
	tcase_add_test(tc, options_out_of_range);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(header_suite)
