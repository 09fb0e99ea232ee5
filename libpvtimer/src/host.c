/* SPDX-License-Identifier: MIT */
/* Host side of the protocol: liveness, promises, slot reads and status. */
#include <errno.h>

#include "internal.h"

/* A guest mid-write holds the seqlock odd for a few stores; more attempts
 * than this means it is stuck or hostile, and the slot waits a pass. */
#define SEQ_ATTEMPTS 4

int pvtimer_host_activate(struct pvtimer_area *a, uint64_t next_sync_tsc,
			  uint64_t now_tsc)
{
	struct pvtimer_abi_header *h = a->hdr;
	uint32_t flags = __atomic_load_n(&h->host_flags, __ATOMIC_RELAXED);

	__atomic_store_n(&h->host_epoch,
			 __atomic_load_n(&h->host_epoch, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&h->heartbeat_tsc, now_tsc, __ATOMIC_RELAXED);
	__atomic_store_n(&h->next_sync_tsc, next_sync_tsc, __ATOMIC_SEQ_CST);
	__atomic_store_n(&h->host_flags, flags | PVTIMER_HOST_ACTIVE,
			 __ATOMIC_SEQ_CST);
	/* Everything a guest wrote while nobody looked is re-read. */
	for (uint32_t w = 0; w < a->pending_words; w++) {
		uint32_t left = a->slot_count - w * 64;
		uint64_t bits = left >= 64 ? ~0ull : (1ull << left) - 1;

		__atomic_fetch_or(&a->pending->words[w], bits, __ATOMIC_SEQ_CST);
		__atomic_fetch_or(&a->pending->summary, 1ull << w,
				  __ATOMIC_SEQ_CST);
	}
	return 0;
}

int pvtimer_host_deactivate(struct pvtimer_area *a)
{
	struct pvtimer_abi_header *h = a->hdr;
	uint32_t flags = __atomic_load_n(&h->host_flags, __ATOMIC_RELAXED);

	__atomic_store_n(&h->host_flags, flags & ~PVTIMER_HOST_ACTIVE,
			 __ATOMIC_SEQ_CST);
	/* seq_cst store, then the caller's seq_cst exchange of the pending
	 * summary; the guest does seq_cst OR, then seq_cst load of the flags.
	 * In the single total order either the guest sees us inactive and
	 * falls back, or our next pass sees its arm (no fence needed). */
	__atomic_store_n(&h->next_sync_tsc, PVTIMER_SYNC_NEVER,
			 __ATOMIC_SEQ_CST);
	return 0;
}

int pvtimer_host_publish(struct pvtimer_area *a, uint64_t next_sync_tsc,
			 uint64_t now_tsc)
{
	struct pvtimer_abi_header *h = a->hdr;

	if (!(__atomic_load_n(&h->host_flags, __ATOMIC_RELAXED) &
	      PVTIMER_HOST_ACTIVE))
		return 0;
	__atomic_store_n(&h->heartbeat_tsc, now_tsc, __ATOMIC_RELAXED);
	/* seq_cst: the store must be visible before this pass's pending read
	 * (the store->load pair with the guest's arm; see the spec). */
	__atomic_store_n(&h->next_sync_tsc, next_sync_tsc, __ATOMIC_SEQ_CST);
	return 0;
}

int pvtimer_host_set_slot_sync(struct pvtimer_area *a, uint32_t slot,
			       uint64_t value)
{
	if (slot >= a->slot_count)
		return -ERANGE;
	__atomic_store_n(&pvtimer_slot_at(a, slot)->next_sync_tsc, value,
			 __ATOMIC_SEQ_CST);
	return 0;
}

struct guest_line {
	uint64_t deadline;
	uint32_t gen;
	uint8_t vector;
	uint8_t flags;
};

/* Seqlock read; each field loaded exactly once per attempt. The field loads
 * are acquire so the closing seq load cannot move above them (free on x86,
 * and it needs no fence, which ThreadSanitizer cannot model). */
static int read_guest_line(struct pvtimer_abi_slot *s, struct guest_line *out)
{
	for (int i = 0; i < SEQ_ATTEMPTS; i++) {
		uint32_t seq0 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

		if (seq0 & 1u)
			continue;
		out->gen = __atomic_load_n(&s->arm_gen, __ATOMIC_ACQUIRE);
		out->deadline = __atomic_load_n(&s->deadline_tsc, __ATOMIC_ACQUIRE);
		out->vector = __atomic_load_n(&s->vector, __ATOMIC_ACQUIRE);
		out->flags = __atomic_load_n(&s->arm_flags, __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq0)
			return 0;
	}
	return -EAGAIN;
}

static uint8_t judge(struct pvtimer_area *a, const struct guest_line *l,
		     uint64_t now)
{
	if (l->flags & ~PVTIMER_ARM_FLAGS_ALL) {
		PVTIMER_COUNT(a, rejected_flags);
		return PVTIMER_REJECT_FLAGS;
	}
	if (!(l->flags & PVTIMER_ARM_ARMED))
		return PVTIMER_REJECT_NONE; /* a cancel: nothing else matters */
	if (l->vector < a->vector_min || l->vector > a->vector_max) {
		PVTIMER_COUNT(a, rejected_vector);
		return PVTIMER_REJECT_VECTOR;
	}
	if (l->deadline > now && l->deadline - now > a->max_horizon_tsc) {
		PVTIMER_COUNT(a, rejected_far);
		return PVTIMER_REJECT_FAR;
	}
	if (l->deadline < now && now - l->deadline > a->max_horizon_tsc) {
		PVTIMER_COUNT(a, rejected_past);
		return PVTIMER_REJECT_PAST;
	}
	return PVTIMER_REJECT_NONE;
}

static void set_status(struct pvtimer_area *a, uint32_t slot, uint32_t gen,
		       uint32_t status, uint32_t reason)
{
	__atomic_store_n(&pvtimer_slot_at(a, slot)->status_word,
			 PVTIMER_STATUS_WORD(gen, status, reason),
			 __ATOMIC_RELEASE);
}

int pvtimer_host_read_slot(struct pvtimer_area *a, uint32_t slot,
			   uint64_t now_tsc, struct pvtimer_slot_snapshot *snap)
{
	struct guest_line line;

	if (slot >= a->slot_count)
		return -ERANGE;
	PVTIMER_COUNT(a, slot_reads);
	*snap = (struct pvtimer_slot_snapshot){0};
	if (read_guest_line(pvtimer_slot_at(a, slot), &line) < 0) {
		PVTIMER_COUNT(a, torn_reads);
		return -EAGAIN;
	}
	snap->gen = line.gen;
	snap->reject = judge(a, &line, now_tsc);
	if (snap->reject != PVTIMER_REJECT_NONE) {
		set_status(a, slot, line.gen, PVTIMER_STATUS_REJECTED,
			   snap->reject);
		return -EINVAL;
	}
	snap->armed = line.flags & PVTIMER_ARM_ARMED;
	if (snap->armed &&
	    a->last_fired[slot] == (line.gen | PVTIMER_FIRED_VALID)) {
		snap->armed = 0;
		snap->already_fired = 1;
	}
	if (!snap->armed)
		return 0;
	snap->deadline_tsc = line.deadline;
	snap->vector = line.vector;
	snap->past = line.deadline <= now_tsc;
	if (snap->past)
		PVTIMER_COUNT(a, past_deadlines);
	return 0;
}

int pvtimer_host_ack(struct pvtimer_area *a, uint32_t slot, uint32_t gen)
{
	if (slot >= a->slot_count)
		return -ERANGE;
	set_status(a, slot, gen, PVTIMER_STATUS_SEEN, PVTIMER_REJECT_NONE);
	return 0;
}

int pvtimer_host_fired(struct pvtimer_area *a, uint32_t slot, uint32_t gen,
		       uint64_t fired_tsc)
{
	struct pvtimer_abi_slot *s;

	if (slot >= a->slot_count)
		return -ERANGE;
	s = pvtimer_slot_at(a, slot);
	if (a->features & PVTIMER_F_FIRED_TSC)
		__atomic_store_n(&s->fired_tsc, fired_tsc, __ATOMIC_RELAXED);
	__atomic_store_n(&s->fired_gen, gen, __ATOMIC_RELAXED);
	a->last_fired[slot] = gen | PVTIMER_FIRED_VALID;
	set_status(a, slot, gen, PVTIMER_STATUS_FIRED, PVTIMER_REJECT_NONE);
	return 0;
}

int pvtimer_host_handback(struct pvtimer_area *a, uint32_t slot, uint32_t gen)
{
	if (slot >= a->slot_count)
		return -ERANGE;
	set_status(a, slot, gen, PVTIMER_STATUS_HANDBACK, PVTIMER_REJECT_NONE);
	return 0;
}
