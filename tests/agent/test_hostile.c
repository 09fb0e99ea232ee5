/* SPDX-License-Identifier: MIT */
/* A hostile slot next to honest ones: past deadlines in a loop, bad
 * vectors and flags, deadlines far beyond the horizon, torn
 * writes, storms of pending bits. Honest vCPUs lose nothing and stay on
 * time; every hostile input is counted. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "check_main.h"
#include "sim.h"

#define LATE_BOUND_NS 50000000ull
#define NHONEST 8
#define HOSTILE 8 /* slot index */
#define RUN_NS 600000000ull

struct honest {
	struct sim_vcpu v[2];
	unsigned seed;
	uint64_t end;
};

static void *honest_thread(void *arg)
{
	struct honest *h = arg;

	while (sim_tsc() < h->end)
		for (int k = 0; k < 2; k++) {
			uint64_t d = 2000000 + (uint64_t)(rand_r(&h->seed) % 8000000);

			sim_vcpu_timer(&h->v[k], sim_tsc() + sim_ns_to_tsc(d));
		}
	return NULL;
}

struct hostile {
	char *mem;
	uint64_t end;
	uint64_t rounds;
};

static void *hostile_thread(void *arg)
{
	struct hostile *x = arg;
	const struct pvtimer_abi_header *hdr = (const void *)x->mem;
	struct pvtimer_abi_slot *s = (void *)(x->mem + hdr->slots_offset +
					      HOSTILE * hdr->slot_stride);
	struct pvtimer_abi_pending *p = (void *)(x->mem + hdr->pending_offset);
	uint32_t seq = 0, gen = 0;

	while (sim_tsc() < x->end) {
		uint64_t now = sim_tsc(), dl = now - 1000;
		uint8_t vec = 0x70, flags = PVTIMER_ARM_ARMED;

		switch (x->rounds % 5) {
		case 1:
			vec = 5; /* an exception vector */
			break;
		case 2:
			/* far ahead (modular: beyond the horizon, below 2^63) */
			dl = now + (1ull << 61) - x->rounds;
			break;
		case 3:
			flags = 0x81; /* armed, plus an unknown flag */
			break;
		case 4: /* torn: leave the seqlock odd for a while */
			__atomic_store_n(&s->seq, ++seq | 1u, __ATOMIC_RELEASE);
			__atomic_fetch_or(&p->words[0], 1ull << HOSTILE,
					  __ATOMIC_SEQ_CST);
			__atomic_fetch_or(&p->summary, 1, __ATOMIC_SEQ_CST);
			for (int i = 0; i < 20; i++)
				__builtin_ia32_pause();
			seq |= 1u;
			break;
		default:
			break; /* re-armed in the past, again and again */
		}
		__atomic_store_n(&s->seq, seq | 1u, __ATOMIC_RELAXED);
		__atomic_store_n(&s->arm_gen, ++gen, __ATOMIC_RELAXED);
		__atomic_store_n(&s->deadline_tsc, dl, __ATOMIC_RELAXED);
		__atomic_store_n(&s->vector, vec, __ATOMIC_RELAXED);
		__atomic_store_n(&s->arm_flags, flags, __ATOMIC_RELAXED);
		seq = (seq | 1u) + 1;
		__atomic_store_n(&s->seq, seq, __ATOMIC_RELEASE);
		/* a storm: every bit, including bits naming no slot */
		__atomic_fetch_or(&p->words[0], ~0ull, __ATOMIC_SEQ_CST);
		__atomic_fetch_or(&p->words[1], ~0ull, __ATOMIC_SEQ_CST);
		__atomic_fetch_or(&p->summary, ~0ull, __ATOMIC_SEQ_CST);
		x->rounds++;
		/* hold each input until a pass took it (or 200 us): every
		 * kind gets read. A real vCPU spins on its own CPU; this one
		 * shares two with the agent and the honest vCPUs, so it
		 * naps every round (the storm stays far faster than passes) */
		while (sim_tsc() - now < sim_ns_to_tsc(200000) &&
		       (__atomic_load_n(&p->words[0], __ATOMIC_ACQUIRE) &
			(1ull << HOSTILE)))
			__builtin_ia32_pause();
		sim_sleep_ns(20000);
	}
	return NULL;
}

static int count_cb(void *ctx, uint32_t area, uint32_t slot, uint8_t vector)
{
	(void)area;
	(void)slot;
	(void)vector;
	__atomic_fetch_add((uint64_t *)ctx, 1, __ATOMIC_RELAXED);
	return 0;
}

START_TEST(hostile_next_to_honest)
{
	/* 65 slots: pending word 1 has 63 bits naming no slot */
	struct pvtimer_area *area = sim_area(65);
	PVAGENT_OPTS(o, .mode = _i ? PVAGENT_MODE_ADAPTIVE : PVAGENT_MODE_DEDICATED);
	struct pvagent *ag = NULL;
	struct honest h[NHONEST / 2];
	struct hostile x = { .mem = pvtimer_area_mem(area) };
	struct pvagent_injector cb = { .kind = PVAGENT_INJ_CALLBACK, .fn = count_cb };
	struct pvagent_stats st = { .sz = sizeof(st) };
	pthread_t th[NHONEST / 2], hth;
	uint64_t hostile_shots = 0, pv = 0, lost = 0, early = 0, late = 0, hb = 0;
	uint64_t end;

	cb.ctx = &hostile_shots;
	ck_assert_int_eq(pvagent_new(&o, &ag), 0);
	ck_assert_int_eq(pvagent_attach_area(ag, area, NULL, NULL), 0);
	for (int t = 0; t < NHONEST / 2; t++) {
		h[t].seed = (unsigned)t + 7;
		for (int k = 0; k < 2; k++) {
			struct pvagent_injector inj;

			ck_assert_int_eq(sim_vcpu_init(&h[t].v[k], area,
						       (uint32_t)(2 * t + k)), 0);
			inj = sim_vcpu_injector(&h[t].v[k]);
			ck_assert_int_eq(pvagent_bind_slot(ag, 0, (uint32_t)(2 * t + k),
							 &inj), 0);
		}
	}
	ck_assert_int_eq(pvagent_bind_slot(ag, 0, HOSTILE, &cb), 0);
	ck_assert_int_eq(pvagent_start(ag), 0);
	sim_sleep_ns(5000000);
	end = sim_tsc() + sim_ns_to_tsc(RUN_NS);
	x.end = end;
	pthread_create(&hth, NULL, hostile_thread, &x);
	for (int t = 0; t < NHONEST / 2; t++) {
		h[t].end = end;
		pthread_create(&th[t], NULL, honest_thread, &h[t]);
	}
	for (int t = 0; t < NHONEST / 2; t++)
		pthread_join(th[t], NULL);
	pthread_join(hth, NULL);
	/* stopped first, so that the counters include the last pass's
	 * fires and handbacks */
	ck_assert_int_eq(pvagent_stop(ag), 0);
	ck_assert_int_eq(pvagent_get_stats(ag, &st), 0);
	pvagent_destroy(ag);

	for (int t = 0; t < NHONEST / 2; t++)
		for (int k = 0; k < 2; k++) {
			pv += h[t].v[k].pv_fires;
			lost += h[t].v[k].lost;
			early += h[t].v[k].early;
			hb += h[t].v[k].handbacks;
			if (h[t].v[k].late_max_ns > late)
				late = h[t].v[k].late_max_ns;
			sim_vcpu_fini(&h[t].v[k]);
		}
	if (getenv("AGENT_TEST_VERBOSE"))
		printf("mode %d pv %lu fb %lu hb %lu lh %lu rounds %lu scans %lu "
		       "late %lu iterb %lu wakeb %lu\n", _i, (unsigned long)pv,
		       (unsigned long)h[0].v[0].fallbacks,
		       (unsigned long)h[0].v[0].handbacks,
		       (unsigned long)h[0].v[0].late_halts,
		       (unsigned long)x.rounds, (unsigned long)st.scans,
		       (unsigned long)st.promises_late,
		       (unsigned long)st.iter_bound_ns,
		       (unsigned long)st.wake_bound_ns);
	fflush(stdout);
	ck_assert_uint_eq(lost, 0);
	ck_assert_uint_eq(early, 0);
	ck_assert_uint_gt(pv, 10);
	ck_assert_uint_le(late, LATE_BOUND_NS);
	/* every kind of hostile input was seen, counted, not trusted */
	ck_assert_uint_gt(x.rounds, 50);
	ck_assert_uint_gt(st.rejected_vector, 0);
	ck_assert_uint_gt(st.rejected_far, 0);
	ck_assert_uint_gt(st.rejected_flags, 0);
	ck_assert_uint_gt(st.past_arms, 0);
	ck_assert_uint_gt(st.stray_pending, 0);
	/* bounded work: the hostile slot fires at most once per pass, and
	 * only with a valid vector */
	ck_assert_uint_le(hostile_shots, st.scans + 1);
	/* every shot is a fire, a handback or one wake per rejected
	 * generation: the honest ones reached their vCPUs, the rest the
	 * hostile slot's callback */
	ck_assert_uint_eq(st.fires + st.reject_wakes + st.handbacks,
			  pv + hb + __atomic_load_n(&hostile_shots,
						    __ATOMIC_RELAXED));
	ck_assert_uint_gt(st.reject_wakes, 0);
	/* every round is a bad read: the slot was parked */
	ck_assert_uint_gt(st.backoffs, 0);
	ck_assert_uint_gt(st.withdrawals, 0);
	pvtimer_area_destroy(area);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("agent-hostile");
	TCase *tc = tcase_create("hostile");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, hostile_next_to_honest, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

EXITLESS_CHECK_MAIN(suite)
