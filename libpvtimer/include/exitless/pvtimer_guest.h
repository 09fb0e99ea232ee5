/* SPDX-License-Identifier: MIT */
/**
 * @file pvtimer_guest.h
 * @brief Guest-side helpers for the pvtimer ABI: arm, cancel, the fallback
 * rule, the pre-halt check and interrupt classification.
 *
 * Everything here is `static inline`, freestanding (no libc, no allocation,
 * no floating point) and uses only GCC/Clang `__atomic` builtins, so a guest
 * kernel's clock-event driver can include it as is. The state is
 * caller-owned: one `struct pvtimer_guest` per vCPU, touched only by that
 * vCPU with interrupts disabled (the slot has a single writer).
 *
 * The time source defaults to RDTSC on x86. Define PVTIMER_GUEST_READ_TSC to
 * a function-like macro before including this header to supply another one
 * (tests drive time this way).
 */
#ifndef EXITLESS_PVTIMER_GUEST_H
#define EXITLESS_PVTIMER_GUEST_H

#ifdef __KERNEL__
#include <linux/stddef.h>
#include <linux/types.h>
#else
#include <stddef.h>
#include <stdint.h>
#endif

#include "pvtimer_abi.h"

#ifndef PVTIMER_GUEST_READ_TSC
#if defined(__x86_64__) || defined(__i386__)
#define PVTIMER_GUEST_READ_TSC() __builtin_ia32_rdtsc()
#else
#error "define PVTIMER_GUEST_READ_TSC() for this architecture"
#endif
#endif

/* Decisions. 0 means the pvtimer path holds the deadline; anything positive
 * means the guest must program its hardware timer itself. */
#define PVTIMER_GUEST_PV 0                /**< no exit needed */
#define PVTIMER_GUEST_FALLBACK_DISABLED 1 /**< host not active */
#define PVTIMER_GUEST_FALLBACK_PAST 2     /**< deadline <= now */
#define PVTIMER_GUEST_FALLBACK_TOO_FAR 3  /**< beyond now + max_horizon */
#define PVTIMER_GUEST_FALLBACK_STALE 4    /**< now > next sync: host late */
#define PVTIMER_GUEST_FALLBACK_TOO_CLOSE 5 /**< deadline < sync + margin */
#define PVTIMER_GUEST_FALLBACK_REJECTED 6 /**< host rejected this arm */

/* Interrupt classification. */
#define PVTIMER_GUEST_IRQ_EXPIRED 0  /**< deadline reached: run timers */
#define PVTIMER_GUEST_IRQ_HANDBACK 1 /**< host let go early: re-arm */
#define PVTIMER_GUEST_IRQ_SPURIOUS 2 /**< stale or duplicate: ignore */

/* Errors of pvtimer_guest_init(), numerically Linux errno values. */
#define PVTIMER_GUEST_EINVAL (-22) /**< not a pvtimer area */
#define PVTIMER_GUEST_ERANGE (-34) /**< slot or vector out of range */
#define PVTIMER_GUEST_EPROTO (-71) /**< unknown ABI major */

/**
 * Per-vCPU guest state. Caller-owned; fill it with pvtimer_guest_init().
 * Fields are private to these helpers.
 */
struct pvtimer_guest {
	volatile struct pvtimer_abi_header *hdr;
	struct pvtimer_abi_slot *slot;
	uint64_t *pending_word;
	uint64_t *pending_summary;
	uint64_t slot_bit;
	uint64_t summary_bit;
	uint64_t margin_tsc;
	uint64_t max_horizon_tsc;
	uint64_t deadline_tsc; /* the deadline the host holds, if pv_armed */
	uint32_t gen;          /* last generation written to the slot */
	uint32_t seq;          /* our copy of the seqlock counter */
	uint8_t vector;
	uint8_t pv_armed;
};

/**
 * The fallback rule of docs/pvtimer-abi.md, as a pure function.
 *
 * @param host_flags header.host_flags as read
 * @param sync       effective next sync: min(header, slot) next_sync_tsc
 * @param margin     header.margin_tsc
 * @param horizon    header.max_horizon_tsc
 * @param deadline   the guest TSC deadline
 * @param now        the guest TSC, read after the arm was made visible
 * @return PVTIMER_GUEST_PV or a PVTIMER_GUEST_FALLBACK_* reason.
 */
static inline int pvtimer_fallback_reason(uint32_t host_flags, uint64_t sync,
					  uint64_t margin, uint64_t horizon,
					  uint64_t deadline, uint64_t now)
{
	if (!(host_flags & PVTIMER_HOST_ACTIVE))
		return PVTIMER_GUEST_FALLBACK_DISABLED;
	if (deadline <= now)
		return PVTIMER_GUEST_FALLBACK_PAST;
	if (deadline - now > horizon)
		return PVTIMER_GUEST_FALLBACK_TOO_FAR;
	if (now > sync)
		return PVTIMER_GUEST_FALLBACK_STALE;
	/* written to avoid overflow when sync is near UINT64_MAX */
	if (deadline < sync || deadline - sync < margin)
		return PVTIMER_GUEST_FALLBACK_TOO_CLOSE;
	return PVTIMER_GUEST_PV;
}

/**
 * Decode the area leaf (signature leaf + 1) of the CPUID discovery block.
 * @return 0, or PVTIMER_GUEST_EINVAL when the leaf names no area or no slot.
 */
static inline int pvtimer_guest_cpuid_decode(uint32_t eax, uint32_t ebx,
					     uint32_t ecx, uint32_t edx,
					     uint64_t *gpa, uint32_t *slot,
					     uint64_t *size)
{
	if ((eax & 0xfffu) != 0 || edx == 0 || ecx == PVTIMER_CPUID_NO_SLOT)
		return PVTIMER_GUEST_EINVAL;
	*gpa = ((uint64_t)ebx << 32) | eax;
	*slot = ecx;
	*size = (uint64_t)edx * PVTIMER_ABI_PAGE_SIZE;
	return 0;
}

/**
 * Bind @p g to slot @p slot_index of the area mapped at @p area.
 *
 * Validates the header against @p area_size before trusting any offset.
 * @return 0, PVTIMER_GUEST_EINVAL (bad magic or geometry),
 * PVTIMER_GUEST_EPROTO (unknown major), PVTIMER_GUEST_ERANGE (slot index or
 * vector out of range).
 */
static inline int pvtimer_guest_init(struct pvtimer_guest *g, void *area,
				     uint64_t area_size, uint32_t slot_index,
				     uint8_t vector)
{
	volatile struct pvtimer_abi_header *h = area;
	uint64_t slots_end, pend_end;
	struct pvtimer_abi_pending *pend;

	/* acquire: the host writes the magic last, after the geometry */
	if (area_size < PVTIMER_ABI_HEADER_SIZE ||
	    __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != PVTIMER_ABI_MAGIC)
		return PVTIMER_GUEST_EINVAL;
	if (h->abi_major != PVTIMER_ABI_MAJOR)
		return PVTIMER_GUEST_EPROTO;
	if (h->header_size < PVTIMER_ABI_HEADER_SIZE ||
	    h->slot_stride < PVTIMER_ABI_SLOT_STRIDE ||
	    h->slot_stride % PVTIMER_ABI_CACHELINE != 0 ||
	    h->slot_count == 0 || h->slot_count > PVTIMER_ABI_MAX_SLOTS ||
	    h->pending_words != (h->slot_count + 63) / 64 ||
	    h->area_size > area_size)
		return PVTIMER_GUEST_EINVAL;
	slots_end = (uint64_t)h->slots_offset +
		    (uint64_t)h->slot_count * h->slot_stride;
	pend_end = (uint64_t)h->pending_offset + 64 + 8ull * h->pending_words;
	if (slots_end > h->area_size || pend_end > h->area_size ||
	    h->slots_offset % PVTIMER_ABI_CACHELINE != 0 ||
	    h->pending_offset % PVTIMER_ABI_CACHELINE != 0)
		return PVTIMER_GUEST_EINVAL;
	if (slot_index >= h->slot_count || vector < PVTIMER_VECTOR_MIN)
		return PVTIMER_GUEST_ERANGE;

	pend = (struct pvtimer_abi_pending *)((char *)area + h->pending_offset);
	g->hdr = h;
	g->slot = (struct pvtimer_abi_slot *)((char *)area + h->slots_offset +
					      (uint64_t)slot_index *
						      h->slot_stride);
	g->pending_summary = &pend->summary;
	g->pending_word = &pend->words[slot_index / 64];
	g->slot_bit = 1ull << (slot_index % 64);
	g->summary_bit = 1ull << (slot_index / 64);
	g->margin_tsc = h->margin_tsc;
	g->max_horizon_tsc = h->max_horizon_tsc;
	g->seq = __atomic_load_n(&g->slot->seq, __ATOMIC_RELAXED) & ~1u;
	g->gen = __atomic_load_n(&g->slot->arm_gen, __ATOMIC_RELAXED);
	g->vector = vector;
	g->pv_armed = 0;
	g->deadline_tsc = 0;
	return 0;
}

/** Effective next sync for this slot: the earlier of area and slot promise. */
static inline uint64_t pvtimer_guest_sync(const struct pvtimer_guest *g)
{
	uint64_t area = __atomic_load_n(&g->hdr->next_sync_tsc, __ATOMIC_SEQ_CST);
	uint64_t slot = __atomic_load_n(&g->slot->next_sync_tsc, __ATOMIC_SEQ_CST);

	return area < slot ? area : slot;
}

/* Write the guest line under the seqlock, then flag the slot pending. The
 * seq_cst OR on the summary word orders the arm before the caller's later
 * reads of host state: that store->load order is what makes the fallback
 * rule safe against a host that is just stopping (see the spec). */
static inline void pvtimer_guest__publish(struct pvtimer_guest *g,
					  uint64_t deadline, uint8_t flags)
{
	struct pvtimer_abi_slot *s = g->slot;

	/* Release stores keep the odd seq store ahead of every field store
	 * (free on x86; no fence, which ThreadSanitizer cannot model). */
	g->seq += 1;
	__atomic_store_n(&s->seq, g->seq, __ATOMIC_RELAXED);
	g->gen += 1;
	__atomic_store_n(&s->arm_gen, g->gen, __ATOMIC_RELEASE);
	__atomic_store_n(&s->deadline_tsc, deadline, __ATOMIC_RELEASE);
	__atomic_store_n(&s->vector, g->vector, __ATOMIC_RELEASE);
	__atomic_store_n(&s->arm_flags, flags, __ATOMIC_RELEASE);
	g->seq += 1;
	__atomic_store_n(&s->seq, g->seq, __ATOMIC_RELEASE);
	__atomic_fetch_or(g->pending_word, g->slot_bit, __ATOMIC_SEQ_CST);
	__atomic_fetch_or(g->pending_summary, g->summary_bit, __ATOMIC_SEQ_CST);
}

/**
 * Withdraw the deadline the host holds, if any. Never causes an exit. A
 * fire of the cancelled generation may still arrive if the host had already
 * decided to inject; pvtimer_guest_on_interrupt() reports it as spurious.
 */
static inline void pvtimer_guest_cancel(struct pvtimer_guest *g)
{
	if (!g->pv_armed)
		return;
	pvtimer_guest__publish(g, 0, 0);
	g->pv_armed = 0;
}

/**
 * Arm the timer for @p deadline (guest TSC), following the fallback rule.
 *
 * @return PVTIMER_GUEST_PV when the host now holds the deadline (no exit
 * taken), or a PVTIMER_GUEST_FALLBACK_* reason: the caller must program its
 * hardware timer for @p deadline, and the host holds nothing for this vCPU.
 */
static inline int pvtimer_guest_arm(struct pvtimer_guest *g, uint64_t deadline)
{
	uint32_t flags = __atomic_load_n(&g->hdr->host_flags, __ATOMIC_ACQUIRE);
	uint64_t now = PVTIMER_GUEST_READ_TSC();
	int reason;

	/* Cheap early exit: a rule already failing before we write will
	 * (almost always) fail after; skip the write and the pending bit. */
	reason = pvtimer_fallback_reason(flags, pvtimer_guest_sync(g),
					 g->margin_tsc, g->max_horizon_tsc,
					 deadline, now);
	if (reason != PVTIMER_GUEST_PV) {
		pvtimer_guest_cancel(g);
		return reason;
	}

	pvtimer_guest__publish(g, deadline, PVTIMER_ARM_ARMED);
	g->pv_armed = 1;
	g->deadline_tsc = deadline;

	/* The decisive check: made after the arm is visible. */
	flags = __atomic_load_n(&g->hdr->host_flags, __ATOMIC_SEQ_CST);
	now = PVTIMER_GUEST_READ_TSC();
	reason = pvtimer_fallback_reason(flags, pvtimer_guest_sync(g),
					 g->margin_tsc, g->max_horizon_tsc,
					 deadline, now);
	if (reason != PVTIMER_GUEST_PV)
		pvtimer_guest_cancel(g);
	return reason;
}

/**
 * Re-check, just before the vCPU halts, that the host still holds the
 * armed deadline (a host may have gone late or stopped since the arm).
 *
 * @return PVTIMER_GUEST_PV (safe to halt on the pvtimer path) or a
 * PVTIMER_GUEST_FALLBACK_* reason: program the hardware timer first. Also
 * PVTIMER_GUEST_PV when nothing is armed.
 */
static inline int pvtimer_guest_before_halt(struct pvtimer_guest *g)
{
	uint64_t word, now;
	uint32_t flags;
	int reason;

	if (!g->pv_armed)
		return PVTIMER_GUEST_PV;
	word = __atomic_load_n(&g->slot->status_word, __ATOMIC_ACQUIRE);
	if (PVTIMER_STATUS_GEN(word) == g->gen) {
		switch (PVTIMER_STATUS_CODE(word)) {
		case PVTIMER_STATUS_REJECTED:
		case PVTIMER_STATUS_HANDBACK:
			/* withdraw it, so a host that resumes later finds
			 * no stale arm to fire */
			pvtimer_guest_cancel(g);
			return PVTIMER_GUEST_FALLBACK_REJECTED;
		case PVTIMER_STATUS_FIRED:
			return PVTIMER_GUEST_PV;
		default:
			break;
		}
	}
	flags = __atomic_load_n(&g->hdr->host_flags, __ATOMIC_SEQ_CST);
	now = PVTIMER_GUEST_READ_TSC();
	if (PVTIMER_STATUS_GEN(word) == g->gen &&
	    PVTIMER_STATUS_CODE(word) == PVTIMER_STATUS_SEEN &&
	    (flags & PVTIMER_HOST_ACTIVE))
		return PVTIMER_GUEST_PV; /* held; a stopping host hands back */
	if (g->deadline_tsc <= now)
		return PVTIMER_GUEST_FALLBACK_PAST;
	reason = pvtimer_fallback_reason(flags, pvtimer_guest_sync(g), 0,
					 UINT64_MAX, g->deadline_tsc, now);
	if (reason != PVTIMER_GUEST_PV)
		pvtimer_guest_cancel(g);
	return reason;
}

/**
 * Classify an interrupt on the pvtimer vector.
 *
 * @return PVTIMER_GUEST_IRQ_EXPIRED when the armed deadline has passed (the
 * pv arm is consumed), PVTIMER_GUEST_IRQ_HANDBACK when the host gave the
 * deadline back before it expired (re-arm: pvtimer_guest_arm() will now
 * choose the hardware timer), PVTIMER_GUEST_IRQ_SPURIOUS otherwise.
 */
static inline int pvtimer_guest_on_interrupt(struct pvtimer_guest *g)
{
	uint64_t word;

	if (!g->pv_armed)
		return PVTIMER_GUEST_IRQ_SPURIOUS;
	if (PVTIMER_GUEST_READ_TSC() >= g->deadline_tsc) {
		g->pv_armed = 0;
		return PVTIMER_GUEST_IRQ_EXPIRED;
	}
	word = __atomic_load_n(&g->slot->status_word, __ATOMIC_ACQUIRE);
	if (PVTIMER_STATUS_GEN(word) == g->gen &&
	    PVTIMER_STATUS_CODE(word) == PVTIMER_STATUS_HANDBACK) {
		pvtimer_guest_cancel(g); /* no stale arm for a resumed host */
		return PVTIMER_GUEST_IRQ_HANDBACK;
	}
	return PVTIMER_GUEST_IRQ_SPURIOUS;
}

#endif /* EXITLESS_PVTIMER_GUEST_H */
