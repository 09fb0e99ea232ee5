/* SPDX-License-Identifier: MIT */
/* Pause and resume mid-run: guests that follow the fallback rule lose
 * nothing; paused, nothing is promised; resumed, what expired is fired. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "check_main.h"
#include "sim.h"

#define NVCPU 8
#define RUN_NS 600000000ull

struct vcpu_run {
	struct sim_vcpu v;
	unsigned seed;
	uint64_t end;
	uint64_t timers;
	uint64_t span_ns;
};

static void *vcpu_thread(void *arg)
{
	struct vcpu_run *r = arg;

	while (sim_tsc() < r->end) {
		/* 100 us .. 5 ms (adaptive: 15 ms, beyond the sleep promise
		 * of a loaded, sanitised run): some arms always fall inside a
		 * pause */
		uint64_t d = 100000 + (uint64_t)(rand_r(&r->seed) % r->span_ns);

		sim_vcpu_timer(&r->v, sim_tsc() + sim_ns_to_tsc(d));
		r->timers++;
	}
	return NULL;
}

START_TEST(paused_mid_run_loses_nothing)
{
	struct pvtimer_area *area = sim_area(NVCPU);
	const struct pvtimer_abi_header *hdr = pvtimer_area_mem(area);
	PVAGENT_OPTS(o, .mode = _i ? PVAGENT_MODE_ADAPTIVE : PVAGENT_MODE_DEDICATED);
	struct pvagent *ag = NULL;
	struct vcpu_run *r = calloc(NVCPU, sizeof(*r));
	struct pvagent_stats st = { .sz = sizeof(st) };
	pthread_t th[NVCPU];
	uint64_t end, timers = 0, delivered = 0, lost = 0, early = 0, hb = 0;
	uint64_t pv = 0;
	int pauses = 0;

	ck_assert_int_eq(pvagent_new(&o, &ag), 0);
	ck_assert_int_eq(pvagent_attach_area(ag, area, NULL, NULL), 0);
	for (uint32_t i = 0; i < NVCPU; i++) {
		struct pvagent_injector inj;

		ck_assert_int_eq(sim_vcpu_init(&r[i].v, area, i), 0);
		inj = sim_vcpu_injector(&r[i].v);
		ck_assert_int_eq(pvagent_bind_slot(ag, 0, i, &inj), 0);
		r[i].seed = i + 3;
		r[i].span_ns = _i ? 14900000 : 4900000;
	}
	ck_assert_int_eq(pvagent_pause(ag), -ESRCH);
	ck_assert_int_eq(pvagent_start(ag), 0);
	end = sim_tsc() + sim_ns_to_tsc(RUN_NS);
	for (uint32_t i = 0; i < NVCPU; i++) {
		r[i].end = end;
		pthread_create(&th[i], NULL, vcpu_thread, &r[i]);
	}
	while (sim_tsc() < end) {
		sim_sleep_ns(15000000);
		ck_assert_int_eq(pvagent_pause(ag), 0);
		ck_assert_int_eq(pvagent_pause(ag), -EALREADY);
		/* paused: no promise a guest could take */
		ck_assert_uint_eq(__atomic_load_n(&hdr->host_flags,
						  __ATOMIC_ACQUIRE) &
					  PVTIMER_HOST_ACTIVE, 0);
		ck_assert_uint_eq(__atomic_load_n(&hdr->next_sync_tsc,
						  __ATOMIC_ACQUIRE),
				  PVTIMER_SYNC_NEVER);
		sim_sleep_ns(5000000);
		ck_assert_int_eq(pvagent_resume(ag), 0);
		pauses++;
	}
	for (uint32_t i = 0; i < NVCPU; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(pvagent_get_stats(ag, &st), 0);
	pvagent_destroy(ag);
	for (uint32_t i = 0; i < NVCPU; i++) {
		struct sim_vcpu *v = &r[i].v;

		timers += r[i].timers;
		delivered += v->pv_fires + v->fallbacks + v->handbacks +
			     v->late_halts;
		lost += v->lost;
		early += v->early;
		hb += v->handbacks;
		pv += v->pv_fires;
		sim_vcpu_fini(v);
	}
	ck_assert_int_gt(pauses, 5);
	ck_assert_uint_eq(lost, 0);
	ck_assert_uint_eq(early, 0);
	ck_assert_uint_eq(delivered, timers);
	ck_assert_uint_gt(st.fires, 0);
	/* the pauses sent guests to their hardware timers: by handback of
	 * what the agent held, or by the rule (DISABLED) */
	ck_assert_uint_gt(delivered - pv, 0);
	ck_assert_uint_le(hb, st.handbacks);
	free(r);
	pvtimer_area_destroy(area);
}
END_TEST

static uint32_t shots;
static int count_cb(void *ctx, uint32_t area, uint32_t slot, uint8_t vector)
{
	(void)ctx;
	(void)area;
	(void)slot;
	(void)vector;
	__atomic_fetch_add(&shots, 1, __ATOMIC_RELAXED);
	return 0;
}

/* A VM snapshot: the vCPU does not run while paused, so the guest line
 * still holds the generation; resume fires it once it has expired. */
START_TEST(resume_fires_what_expired)
{
	struct pvtimer_area *area = sim_area(1);
	PVAGENT_OPTS(o, .mode = _i ? PVAGENT_MODE_ADAPTIVE : PVAGENT_MODE_DEDICATED);
	struct pvagent_injector cb = { .kind = PVAGENT_INJ_CALLBACK, .fn = count_cb };
	struct pvagent *ag = NULL;
	struct pvtimer_guest g;
	struct pvtimer_abi_slot *s;
	const struct pvtimer_abi_header *hdr = pvtimer_area_mem(area);
	uint64_t dl, word;
	int r = -1;

	shots = 0;
	ck_assert_int_eq(pvagent_new(&o, &ag), 0);
	ck_assert_int_eq(pvagent_attach_area(ag, area, NULL, NULL), 0);
	ck_assert_int_eq(pvagent_bind_slot(ag, 0, 0, &cb), 0);
	ck_assert_int_eq(pvagent_start(ag), 0);
	ck_assert_int_eq(pvtimer_guest_init(&g, pvtimer_area_mem(area),
					    pvtimer_area_bytes(area), 0, 0x41), 0);
	s = (void *)((char *)pvtimer_area_mem(area) + hdr->slots_offset);
	/* far enough that sim_arm_pv's retries on a loaded machine cannot
	 * bring it due before the pause (it would fire, not come back) */
	dl = sim_tsc() + sim_ns_to_tsc(200000000ull);
	r = sim_arm_pv(&g, dl);
	ck_assert_int_eq(r, PVTIMER_GUEST_PV);
	ck_assert_int_eq(pvagent_pause(ag), 0);
	ck_assert_uint_eq(__atomic_load_n(&shots, __ATOMIC_RELAXED), 1);
	sim_hw_wait(dl + sim_ns_to_tsc(5000000));
	ck_assert_int_eq(pvagent_resume(ag), 0);
	ck_assert_int_eq(pvagent_resume(ag), -EALREADY);
	for (int i = 0; i < 1000 && __atomic_load_n(&shots, __ATOMIC_RELAXED) < 2; i++)
		sim_sleep_ns(1000000);
	ck_assert_uint_eq(__atomic_load_n(&shots, __ATOMIC_RELAXED), 2);
	word = __atomic_load_n(&s->status_word, __ATOMIC_ACQUIRE);
	ck_assert_uint_eq(PVTIMER_STATUS_CODE(word), PVTIMER_STATUS_FIRED);
	ck_assert_uint_eq(PVTIMER_STATUS_GEN(word),
			  __atomic_load_n(&s->arm_gen, __ATOMIC_RELAXED));
	sim_sleep_ns(10000000);
	ck_assert_uint_eq(__atomic_load_n(&shots, __ATOMIC_RELAXED), 2);
	pvagent_destroy(ag);
	pvtimer_area_destroy(area);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("agent-pause");
	TCase *tc = tcase_create("pause");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, paused_mid_run_loses_nothing, 0, 2);
	tcase_add_loop_test(tc, resume_fires_what_expired, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(suite)
