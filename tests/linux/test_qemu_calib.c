/* SPDX-License-Identifier: MIT */
/* The host half of the TSC calibration handshake (examples/qemu/calib.c)
 * against a guest thread that follows docs/pvtimer-pci.md §4 with the same
 * TSC (offset 0), and against guests that lie or never answer. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <exitless/pvtimer.h>
#include <exitless/pvtimer_abi.h>

#include "qagent.h"

struct guest {
	void *mem;
	int rounds; /* at least; then on until a round trip <= 20 us */
	int liar;   /* 1: t1 far after t2 (a sample that cannot be) */
};

static struct pvtimer_abi_slot *slot0(void *mem)
{
	struct pvtimer_abi_header *h = mem;

	return (struct pvtimer_abi_slot *)((char *)mem + h->slots_offset);
}

static void *guest_thread(void *arg)
{
	struct guest *g = arg;
	struct pvtimer_abi_header *h = g->mem;
	struct pvtimer_abi_slot *s = slot0(g->mem);
	uint64_t t1, t2 = 0, best = UINT64_MAX, good = qa_tsc_khz() / 50;
	uint32_t seq = 0;

	while (__atomic_load_n(&h->tsc_calib_state, __ATOMIC_ACQUIRE) !=
	       PVTIMER_TSC_CALIB_WANTED)
		;
	/* as the module does: a loaded host descheduling either side makes
	 * most round trips long; the shortest is what counts */
	for (int k = 0;; k++) {
		int last = k >= 512 || (k >= g->rounds && (g->liar || best <= good));

		seq++;
		t1 = __builtin_ia32_rdtsc();
		__atomic_store_n(&s->tsc_calib_t1, g->liar ? t2 + (1ull << 40) : t1,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&s->tsc_calib_t2, t2, __ATOMIC_RELAXED);
		__atomic_store_n(&s->tsc_calib_seq,
				 seq | (last ? PVTIMER_TSC_CALIB_LAST : 0),
				 __ATOMIC_RELEASE);
		if (last)
			break;
		while (__atomic_load_n(&h->tsc_calib_echo, __ATOMIC_ACQUIRE) != seq)
			;
		t2 = __builtin_ia32_rdtsc();
		if (t2 - t1 < best)
			best = t2 - t1;
	}
	return NULL;
}

static struct pvtimer_area *new_area(void **mem)
{
	struct pvtimer_area *a = NULL;
	PVTIMER_AREA_OPTS(o, .slot_count = 2, .tsc_khz = qa_tsc_khz());

	ck_assert_int_eq(pvtimer_area_new(&o, &a), 0);
	*mem = pvtimer_area_mem(a);
	qa_calib_offer(*mem);
	return a;
}

START_TEST(honest_guest_same_tsc)
{
	struct guest g = { .rounds = 16 };
	struct pvtimer_area *a = new_area(&g.mem);
	struct pvtimer_abi_header *h = g.mem;
	struct qa_calib c = { 0 };
	pthread_t t;

	ck_assert(h->features & PVTIMER_F_TSC_CALIBRATE);
	pthread_create(&t, NULL, guest_thread, &g);
	/* the guest publishes its first request before the host looks (a
	 * host that skipped the seq it found waited forever for a new one) */
	while (!__atomic_load_n(&slot0(g.mem)->tsc_calib_seq, __ATOMIC_ACQUIRE))
		;
	ck_assert_int_eq(qa_calib_run(a, (uint32_t)qa_tsc_khz(), -1, 10000, &c), 0);
	pthread_join(t, NULL);
	/* same TSC on both sides: the true offset 0 lies within the bound */
	ck_assert_uint_ge(c.samples, 1);
	ck_assert_uint_gt(c.error_tsc, 0);
	ck_assert_int_le(llabs(c.offset), (long long)c.error_tsc);
	ck_assert_uint_eq(h->tsc_calib_state, PVTIMER_TSC_CALIB_DONE);
	ck_assert_uint_eq(h->tsc_calib_error_tsc, c.error_tsc);
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(lying_guest_gives_no_sample)
{
	struct guest g = { .rounds = 5, .liar = 1 };
	struct pvtimer_area *a = new_area(&g.mem);
	struct qa_calib c = { 0 };
	pthread_t t;

	pthread_create(&t, NULL, guest_thread, &g);
	ck_assert_int_eq(qa_calib_run(a, (uint32_t)qa_tsc_khz(), -1, 10000, &c), -EPROTO);
	pthread_join(t, NULL);
	ck_assert_uint_eq(c.samples, 0);
	ck_assert_uint_ge(c.rejected, 4);
	/* the guest is told to stop either way */
	ck_assert_uint_eq(((struct pvtimer_abi_header *)g.mem)->tsc_calib_state,
			  PVTIMER_TSC_CALIB_DONE);
	pvtimer_area_destroy(a);
}
END_TEST

START_TEST(absent_guest_times_out_and_stop_interrupts)
{
	void *mem;
	struct pvtimer_area *a = new_area(&mem);
	struct qa_calib c = { 0 };
	uint64_t one = 1;
	int efd = eventfd(0, EFD_CLOEXEC);

	ck_assert_int_eq(qa_calib_run(a, (uint32_t)qa_tsc_khz(), -1, 50, &c), -ETIMEDOUT);
	ck_assert_int_eq(write(efd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(qa_calib_run(a, (uint32_t)qa_tsc_khz(), efd, 10000, &c), -EINTR);
	close(efd);
	pvtimer_area_destroy(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qemu-calib");
	TCase *tc = tcase_create("calib");
	SRunner *r;
	int failed;

	tcase_add_test(tc, honest_guest_same_tsc);
	tcase_add_test(tc, lying_guest_gives_no_sample);
	tcase_add_test(tc, absent_guest_times_out_and_stop_interrupts);
	suite_add_tcase(s, tc);
	r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
