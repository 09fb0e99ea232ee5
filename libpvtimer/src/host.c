/* SPDX-License-Identifier: MIT */
/* Host side of the protocol: liveness, promises, slot reads and status. */
#include <errno.h>

#include "internal.h"

/* A guest mid-write holds the seqlock odd for a few stores; more attempts
 * than this means it is stuck or hostile, and the slot waits a pass. */
#define SEQ_ATTEMPTS 4

/* The host's own state (ACTIVE, epoch) lives in the handle: the header is
 * write-only for the host (§7), so nothing a guest scribbles there can
 * change what the host believes. */
int pvtimer_host_activate(struct pvtimer_area *a, uint64_t next_sync_tsc,
			  uint64_t now_tsc)
{
	struct pvtimer_abi_header *h = a->hdr;

	a->epoch++;
	a->active = true;
	__atomic_store_n(&h->host_epoch, a->epoch, __ATOMIC_RELAXED);
	__atomic_store_n(&h->heartbeat_tsc, now_tsc, __ATOMIC_RELAXED);
	__atomic_store_n(&h->next_sync_tsc, pvtimer_sync_value(next_sync_tsc),
			 __ATOMIC_SEQ_CST);
	__atomic_store_n(&h->host_flags, PVTIMER_HOST_ACTIVE, __ATOMIC_SEQ_CST);
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

	a->active = false;
	__atomic_store_n(&h->host_flags, 0u, __ATOMIC_SEQ_CST);
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

	if (!a->active)
		return 0;
	__atomic_store_n(&h->heartbeat_tsc, now_tsc, __ATOMIC_RELAXED);
	/* seq_cst: the store must be visible before this pass's pending read
	 * (the store->load pair with the guest's arm; see the spec). */
	__atomic_store_n(&h->next_sync_tsc, pvtimer_sync_value(next_sync_tsc),
			 __ATOMIC_SEQ_CST);
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

/* Seqlock read; each field loaded exactly once per attempt. The field loads
 * are acquire so the closing seq load cannot move above them (free on x86,
 * and it needs no fence, which ThreadSanitizer cannot model). */
int pvtimer_read_guest_line(struct pvtimer_abi_slot *s,
			    struct pvtimer_guest_line *out)
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

/* FAR is judged in modular TSC arithmetic: a deadline up to the horizon
 * ahead is valid, one behind now (by any amount) is due at once (§7). */
static uint8_t judge(struct pvtimer_area *a, const struct pvtimer_guest_line *l,
		     uint64_t now)
{
	int64_t ahead = pvtimer_tsc_diff(l->deadline, now);

	/* a cancel is a cancel whatever else the line holds, unknown flag
	 * bits included: withdrawing can never be refused */
	if (!(l->flags & PVTIMER_ARM_ARMED))
		return PVTIMER_REJECT_NONE;
	if (l->flags & ~PVTIMER_ARM_FLAGS_ALL)
		return PVTIMER_REJECT_FLAGS;
	if (l->vector < a->vector_min || l->vector > a->vector_max)
		return PVTIMER_REJECT_VECTOR;
	if (ahead > 0 && (uint64_t)ahead > a->max_horizon_tsc)
		return PVTIMER_REJECT_FAR;
	return PVTIMER_REJECT_NONE;
}

/* Status words are written only when they change, from the host's own copy
 * of the last one (never read back from guest memory). */
static void set_status(struct pvtimer_area *a, uint32_t slot, uint32_t gen,
		       uint32_t status, uint32_t reason)
{
	uint64_t w = PVTIMER_STATUS_WORD(gen, status, reason);

	if (a->host[slot].status == w)
		return;
	a->host[slot].status = w;
	__atomic_store_n(&pvtimer_slot_at(a, slot)->status_word, w,
			 __ATOMIC_RELEASE);
}

static void count_reject(struct pvtimer_area *a, uint8_t reason)
{
	switch (reason) {
	case PVTIMER_REJECT_FLAGS:
		PVTIMER_COUNT(a, rejected_flags);
		break;
	case PVTIMER_REJECT_VECTOR:
		PVTIMER_COUNT(a, rejected_vector);
		break;
	default:
		PVTIMER_COUNT(a, rejected_far);
		break;
	}
}

/* A rejected generation is told REJECTED and woken exactly once: the
 * guest may already be halted on it (§7). The wake uses the slot's vector
 * only when that vector is one the host accepts. */
static int reject(struct pvtimer_area *a, uint32_t slot,
		  const struct pvtimer_guest_line *line, uint8_t reason,
		  struct pvtimer_slot_snapshot *snap)
{
	struct pvtimer_slot_host *sh = &a->host[slot];

	snap->reject = reason;
	snap->wake = !(sh->rejected_valid && sh->rejected_gen == line->gen);
	snap->vector = line->vector >= a->vector_min &&
				       line->vector <= a->vector_max
			       ? line->vector
			       : 0;
	if (snap->wake)
		count_reject(a, reason);
	sh->rejected_gen = line->gen;
	sh->rejected_valid = 1;
	set_status(a, slot, line->gen, PVTIMER_STATUS_REJECTED, reason);
	return -EINVAL;
}

int pvtimer_host_read_slot(struct pvtimer_area *a, uint32_t slot,
			   uint64_t now_tsc, struct pvtimer_slot_snapshot *snap)
{
	if (slot >= a->slot_count)
		return -ERANGE;
	return pvtimer_read_slot_checked(a, slot, now_tsc, snap);
}

int pvtimer_read_slot_checked(struct pvtimer_area *a, uint32_t slot,
			      uint64_t now_tsc,
			      struct pvtimer_slot_snapshot *snap)
{
	struct pvtimer_slot_host *sh = &a->host[slot];
	struct pvtimer_guest_line line;
	uint8_t reason;

	PVTIMER_COUNT(a, slot_reads);
	*snap = (struct pvtimer_slot_snapshot){0};
	if (pvtimer_read_guest_line(pvtimer_slot_at(a, slot), &line) < 0) {
		PVTIMER_COUNT(a, torn_reads);
		return -EAGAIN;
	}
	snap->gen = line.gen;
	/* "already fired" is forgotten as soon as another generation is
	 * read: after 2^32 publishes the number comes back, and it is then a
	 * new arm (§5, generation wrap) */
	if (sh->fired_valid && sh->fired_gen != line.gen)
		sh->fired_valid = 0;
	sh->read_valid = 0;
	reason = judge(a, &line, now_tsc);
	if (reason != PVTIMER_REJECT_NONE) {
		sh->seen_valid = 0;
		return reject(a, slot, &line, reason, snap);
	}
	if (!(line.flags & PVTIMER_ARM_ARMED)) {
		/* a cancel: a SEEN left for an older generation must not
		 * outlive it in the status word */
		if (PVTIMER_STATUS_CODE(sh->status) == PVTIMER_STATUS_SEEN)
			set_status(a, slot, line.gen, PVTIMER_STATUS_NONE,
				   PVTIMER_REJECT_NONE);
		sh->seen_valid = 0;
		return 0;
	}
	if (sh->fired_valid && sh->fired_deadline == line.deadline) {
		snap->already_fired = 1;
		set_status(a, slot, line.gen, PVTIMER_STATUS_FIRED,
			   PVTIMER_REJECT_NONE);
		return 0;
	}
	snap->armed = 1;
	snap->deadline_tsc = line.deadline;
	snap->vector = line.vector;
	snap->past = pvtimer_tsc_diff(line.deadline, now_tsc) <= 0;
	snap->recheck = sh->seen_valid && sh->seen_gen == line.gen &&
			sh->seen_deadline == line.deadline;
	sh->read_gen = line.gen;
	sh->read_deadline = line.deadline;
	sh->read_valid = 1;
	if (snap->past && !snap->recheck)
		PVTIMER_COUNT(a, past_deadlines);
	return 0;
}

int pvtimer_host_ack(struct pvtimer_area *a, uint32_t slot, uint32_t gen)
{
	struct pvtimer_slot_host *sh;

	if (slot >= a->slot_count)
		return -ERANGE;
	sh = &a->host[slot];
	if (sh->read_valid && sh->read_gen == gen) {
		sh->seen_gen = gen;
		sh->seen_deadline = sh->read_deadline;
		sh->seen_valid = 1;
	}
	set_status(a, slot, gen, PVTIMER_STATUS_SEEN, PVTIMER_REJECT_NONE);
	return 0;
}

int pvtimer_host_fired(struct pvtimer_area *a, uint32_t slot, uint32_t gen,
		       uint64_t fired_tsc)
{
	struct pvtimer_abi_slot *s;
	struct pvtimer_slot_host *sh;

	if (slot >= a->slot_count)
		return -ERANGE;
	s = pvtimer_slot_at(a, slot);
	sh = &a->host[slot];
	if (a->features & PVTIMER_F_FIRED_TSC)
		__atomic_store_n(&s->fired_tsc, fired_tsc, __ATOMIC_RELAXED);
	__atomic_store_n(&s->fired_gen, gen, __ATOMIC_RELAXED);
	/* remembered exactly: generation and deadline of what was read */
	sh->fired_valid = 0;
	if (sh->seen_valid && sh->seen_gen == gen) {
		sh->fired_deadline = sh->seen_deadline;
		sh->fired_valid = 1;
	} else if (sh->read_valid && sh->read_gen == gen) {
		sh->fired_deadline = sh->read_deadline;
		sh->fired_valid = 1;
	}
	sh->fired_gen = gen;
	sh->seen_valid = 0;
	set_status(a, slot, gen, PVTIMER_STATUS_FIRED, PVTIMER_REJECT_NONE);
	return 0;
}

int pvtimer_host_handback(struct pvtimer_area *a, uint32_t slot, uint32_t gen)
{
	if (slot >= a->slot_count)
		return -ERANGE;
	a->host[slot].seen_valid = 0;
	set_status(a, slot, gen, PVTIMER_STATUS_HANDBACK, PVTIMER_REJECT_NONE);
	return 0;
}
