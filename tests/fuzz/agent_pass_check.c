/* SPDX-License-Identifier: MIT */
/* The recording injector of the agent-pass fuzz target, run on the agent's
 * thread for every shot. It checks what the agent must keep whatever the
 * guest wrote: a shot names the attached area and a bound slot, carries a
 * vector the host accepts, and a fire of a generation the harness armed
 * through the guest helpers is never before its deadline and never
 * repeated. It fails calls on a pattern (the agent must count them) and
 * can block inside a call (the host thread stalled past the horizon). */
#include <errno.h>
#include <time.h>

#include "agent_pass.h"

struct fz_state fz;

uint64_t fz_guest_tsc(void)
{
	return __builtin_ia32_rdtsc() +
	       (uint64_t)__atomic_load_n(&fz.tsc_offset, __ATOMIC_RELAXED);
}

void fz_note_arm(uint32_t slot, uint32_t gen, uint64_t deadline)
{
	struct fz_slot *s = &fz.slot[slot];
	struct fz_known *k = &s->known[s->known_next++ % FZ_KNOWN];

	/* an arm the rule refused before writing left the generation
	 * unused: the next one reuses the number with its own deadline */
	for (uint32_t i = 0; i < FZ_KNOWN; i++)
		if (__atomic_load_n(&s->known[i].gen, __ATOMIC_RELAXED) == gen)
			__atomic_store_n(&s->known[i].valid, 0, __ATOMIC_RELEASE);
	/* invalidate, fill, validate: the injector may read it meanwhile */
	__atomic_store_n(&k->valid, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&k->gen, gen, __ATOMIC_RELAXED);
	__atomic_store_n(&k->deadline, deadline, __ATOMIC_RELAXED);
	__atomic_store_n(&k->valid, 1, __ATOMIC_RELEASE);
}

static int find_known(const struct fz_slot *s, uint32_t gen, uint64_t *deadline)
{
	for (uint32_t i = 0; i < FZ_KNOWN; i++) {
		const struct fz_known *k = &s->known[i];

		if (!__atomic_load_n(&k->valid, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&k->gen, __ATOMIC_RELAXED) != gen)
			continue;
		*deadline = __atomic_load_n(&k->deadline, __ATOMIC_RELAXED);
		/* re-validate: the ring slot may have been reused meanwhile */
		if (__atomic_load_n(&k->valid, __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(&k->gen, __ATOMIC_RELAXED) == gen)
			return 1;
	}
	return 0;
}

/* The status word is host-written and, unless the input is wild, no raw
 * guest write reaches it: FIRED there means this shot is that fire. */
static void check_status(uint32_t slot, uint64_t *word_out)
{
	struct fz_slot *s = &fz.slot[slot];
	struct pvtimer_abi_slot *sl = (struct pvtimer_abi_slot *)
		(fz.mem + fz.slots_offset + (size_t)slot * PVTIMER_ABI_SLOT_STRIDE);
	uint64_t word = __atomic_load_n(&sl->status_word, __ATOMIC_ACQUIRE);
	uint64_t deadline, t;

	*word_out = word;
	if (fz.wild || __atomic_load_n(&s->tainted, __ATOMIC_ACQUIRE) ||
	    PVTIMER_STATUS_CODE(word) != PVTIMER_STATUS_FIRED ||
	    !find_known(s, PVTIMER_STATUS_GEN(word), &deadline))
		return;
	__atomic_fetch_add(&fz.fires_checked, 1, __ATOMIC_RELAXED);
	t = fz.fired_tsc ? __atomic_load_n(&sl->fired_tsc, __ATOMIC_RELAXED)
			 : fz_guest_tsc();
	/* never before the deadline (modular: guest TSC may wrap) */
	FZ_MUST((int64_t)(t - deadline) >= 0);
	/* never twice: a second shot with the same fire decision */
	FZ_MUST(__atomic_load_n(&s->last_fired_word, __ATOMIC_RELAXED) != word);
}

static void stall(void)
{
	uint64_t t = __atomic_exchange_n(&fz.stall_tsc, 0, __ATOMIC_RELAXED);
	uint64_t until = __builtin_ia32_rdtsc() + t;

	while (t && __builtin_ia32_rdtsc() < until)
		__builtin_ia32_pause();
}

int fz_inject(void *ctx, uint32_t area_id, uint32_t slot, uint8_t vector)
{
	uint64_t n = __atomic_fetch_add(&fz.calls, 1, __ATOMIC_RELAXED), word = 0;
	uint32_t pattern = __atomic_load_n(&fz.fail_pattern, __ATOMIC_RELAXED);

	(void)ctx;
	FZ_MUST(area_id == fz.area_id);
	FZ_MUST(slot < fz.nslots);
	FZ_MUST(__atomic_load_n(&fz.slot[slot].bound, __ATOMIC_ACQUIRE));
	/* 1.1: 0 asks for the injector's own vector (a rejected wake) */
	FZ_MUST((PVTIMER_ABI_MINOR >= 1 && vector == 0) ||
		(vector >= fz.vector_min && vector <= fz.vector_max));
	check_status(slot, &word);
	stall();
	if (pattern & (1u << (n % 32))) {
		__atomic_fetch_add(&fz.failures, 1, __ATOMIC_RELAXED);
		return -EIO;
	}
	if (PVTIMER_STATUS_CODE(word) == PVTIMER_STATUS_FIRED)
		__atomic_store_n(&fz.slot[slot].last_fired_word, word,
				 __ATOMIC_RELAXED);
	return 0;
}

void fz_check_stats(struct pvagent *ag)
{
	struct pvagent_stats st = { .sz = sizeof(st) };

	FZ_MUST(pvagent_get_stats(ag, &st) == 0);
	/* every injection reached the injector; every failure was counted */
	FZ_MUST(st.injections == __atomic_load_n(&fz.calls, __ATOMIC_RELAXED));
	FZ_MUST(st.inject_errors == __atomic_load_n(&fz.failures, __ATOMIC_RELAXED));
	FZ_MUST(st.fires + st.handbacks <= st.injections);
}
