/* SPDX-License-Identifier: MIT */
/**
 * @file pvtimer_guest.h
 * @brief Guest-side helpers for the pvtimer ABI 1.1: arm, cancel, the
 * fallback rule, the pre-halt check, interrupt classification and the
 * liveness backstop.
 *
 * Everything here is `static inline`, freestanding (no libc, no allocation,
 * no floating point) and uses only GCC/Clang `__atomic` builtins, so a guest
 * kernel's clock-event driver can include it as is. The state is
 * caller-owned: one `struct pvtimer_guest` per vCPU, touched only by that
 * vCPU with interrupts disabled (the slot has a single writer).
 *
 * One convention for every decision (codes in pvtimer_rule.h): 0
 * (PVTIMER_GUEST_PV) means there is nothing to program; a positive value is
 * the reason why the caller must program its hardware timer at
 * pvtimer_guest_hw_deadline() now. The helpers
 * assume the caller does so, and track what the hardware timer holds.
 *
 * Time: the default source is `lfence; rdtsc` on x86 (the TSC must be read
 * after the loads of the host's promise; see the spec §4). Define
 * PVTIMER_GUEST_READ_TSC to a function-like macro before including this
 * header to supply another one (tests drive time this way). All TSC
 * comparisons are modular (the difference as a signed 64-bit value), as the
 * hardware's are: a guest TSC near 2^64 wraps, it does not saturate.
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
#include "pvtimer_geometry.h"
#include "pvtimer_rule.h"

#ifndef PVTIMER_GUEST_READ_TSC
#if defined(__x86_64__) || defined(__i386__)
static inline uint64_t pvtimer_guest__rdtsc_ordered(void)
{
	uint32_t lo, hi;

	/* lfence: rdtsc may not execute before the earlier loads of the
	 * promise have completed, or "now" could predate them */
	__asm__ __volatile__("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}
#define PVTIMER_GUEST_READ_TSC() pvtimer_guest__rdtsc_ordered()
#else
#error "define PVTIMER_GUEST_READ_TSC() for this architecture"
#endif
#endif

/* Classification of an interrupt on the pvtimer vector. */
#define PVTIMER_GUEST_IRQ_EXPIRED 0  /**< deadline reached: run timers */
#define PVTIMER_GUEST_IRQ_HANDBACK 1 /**< handed back or rejected: program
					  the hardware timer */
#define PVTIMER_GUEST_IRQ_SPURIOUS 2 /**< stale or duplicate: ignore */
#define PVTIMER_GUEST_IRQ_EARLY 3    /**< fired before the deadline (host
					  clock skew, lost injection race):
					  program the hardware timer */

/** pvtimer_guest_on_hw_timer(): the hardware timer expired for real (or
 * the pv deadline it backed passed undelivered): run timers. */
#define PVTIMER_GUEST_HW_EXPIRED 0
/** pvtimer_guest_on_hw_timer(): nothing to run, nothing to program (a
 * backstop outlived what it backed, or the host still holds the deadline
 * and the backstop is off). */
#define PVTIMER_GUEST_HW_IGNORE (-1)

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
	uint64_t hw_deadline_tsc; /* what the hardware timer holds, if hw_armed */
	uint64_t backstop_tsc; /* B of the liveness rule; 0: off */
	uint32_t gen;          /* last generation written to the slot */
	uint32_t seq;          /* our copy of the seqlock counter */
	uint8_t vector;
	uint8_t pv_armed;
	uint8_t hw_armed;
	uint8_t hw_backstop;   /* the hardware timer is only a backstop */
};

/**
 * Decode the area leaf (signature leaf + 1) of the CPUID discovery block.
 * @param eax  the leaf's EAX (area GPA bits 31..12)
 * @param ebx  EBX (GPA bits 63..32)
 * @param ecx  ECX (this vCPU's slot index)
 * @param edx  EDX (area size in 4 KiB pages)
 * @param gpa  receives the area's guest physical address
 * @param slot receives the slot index
 * @param size receives the area size in bytes
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

/* The constant part of the header (lines 0 and 2), each field loaded once:
 * line 1 changes under us and is not copied. */
static inline void pvtimer_guest__copy_header(volatile struct pvtimer_abi_header *h,
					      struct pvtimer_abi_header *c)
{
#define PVTIMER_GUEST__LD(f) (c->f = __atomic_load_n(&h->f, __ATOMIC_RELAXED))
	PVTIMER_GUEST__LD(abi_major);
	PVTIMER_GUEST__LD(abi_minor);
	PVTIMER_GUEST__LD(features);
	PVTIMER_GUEST__LD(header_size);
	PVTIMER_GUEST__LD(slot_count);
	PVTIMER_GUEST__LD(slot_stride);
	PVTIMER_GUEST__LD(slots_offset);
	PVTIMER_GUEST__LD(pending_offset);
	PVTIMER_GUEST__LD(pending_words);
	PVTIMER_GUEST__LD(area_size);
	PVTIMER_GUEST__LD(margin_tsc);
	PVTIMER_GUEST__LD(max_horizon_tsc);
	PVTIMER_GUEST__LD(vector_min);
	PVTIMER_GUEST__LD(vector_max);
#undef PVTIMER_GUEST__LD
}

/** Largest horizon the modular rule can use: differences stay below 2^62. */
#define PVTIMER_GUEST_HORIZON_MAX (1ull << 62)

/**
 * Bind @p g to slot @p slot_index of the area mapped at @p area.
 *
 * Validates a copy of the header against @p area_size with the same
 * geometry check the host uses (pvtimer_geometry_check()). The private
 * seq and generation continue from the slot's current values, so a guest
 * that re-binds (a reloaded driver) never repeats a recent generation.
 * Without PVTIMER_F_VECTOR_RANGE the host accepts 32..255.
 * @param g          caller-owned state, filled here
 * @param area       the area as the guest maps it
 * @param area_size  bytes mapped at @p area
 * @param slot_index this vCPU's slot (CPUID or the transport, §8, §12)
 * @param vector     the interrupt vector the host is to inject
 * @return 0, PVTIMER_GUEST_EINVAL (bad magic or geometry),
 * PVTIMER_GUEST_EPROTO (unknown major), PVTIMER_GUEST_ERANGE (slot index or
 * vector out of the range the host accepts).
 */
static inline int pvtimer_guest_init(struct pvtimer_guest *g, void *area,
				     uint64_t area_size, uint32_t slot_index,
				     uint8_t vector)
{
	volatile struct pvtimer_abi_header *h = (volatile struct pvtimer_abi_header *)area;
	struct pvtimer_abi_header c;
	struct pvtimer_geometry geo;
	struct pvtimer_abi_pending *pend;
	uint32_t vmin = PVTIMER_VECTOR_MIN, vmax = PVTIMER_VECTOR_MAX;
	int err;

	/* acquire: the host writes the magic last, after the geometry */
	if (area_size < PVTIMER_ABI_HEADER_SIZE)
		return PVTIMER_GUEST_EINVAL;
	c.magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
	if (c.magic != PVTIMER_ABI_MAGIC)
		return PVTIMER_GUEST_EINVAL;
	pvtimer_guest__copy_header(h, &c);
	err = pvtimer_geometry_check(&c, area_size, &geo);
	if (err < 0)
		return err;
	if (c.features & PVTIMER_F_VECTOR_RANGE) {
		vmin = c.vector_min > vmin ? c.vector_min : vmin;
		vmax = c.vector_max;
	}
	if (slot_index >= c.slot_count || vector < vmin || vector > vmax)
		return PVTIMER_GUEST_ERANGE;

	pend = (struct pvtimer_abi_pending *)((char *)area + geo.pending_offset);
	g->hdr = h;
	g->slot = (struct pvtimer_abi_slot *)((char *)area + geo.slots_offset +
					      (uint64_t)slot_index *
						      PVTIMER_ABI_SLOT_STRIDE);
	g->pending_summary = &pend->summary;
	g->pending_word = &pend->words[slot_index / 64];
	g->slot_bit = 1ull << (slot_index % 64);
	g->summary_bit = 1ull << (slot_index / 64);
	g->margin_tsc = c.margin_tsc;
	g->max_horizon_tsc = c.max_horizon_tsc < PVTIMER_GUEST_HORIZON_MAX
				     ? c.max_horizon_tsc
				     : PVTIMER_GUEST_HORIZON_MAX;
	g->seq = __atomic_load_n(&g->slot->seq, __ATOMIC_RELAXED) & ~1u;
	g->gen = __atomic_load_n(&g->slot->arm_gen, __ATOMIC_RELAXED);
	__atomic_store_n(&g->slot->guest_features, 0u, __ATOMIC_RELAXED);
	g->vector = vector;
	g->pv_armed = 0;
	g->hw_armed = 0;
	g->hw_backstop = 0;
	g->deadline_tsc = 0;
	g->hw_deadline_tsc = 0;
	g->backstop_tsc = 0;
	return 0;
}

/**
 * Set the liveness backstop period B (guest TSC ticks; 0 turns it off).
 * While the host holds a deadline, the hardware timer is kept armed no
 * later than B after it was last armed, so a host that dies or stops
 * without handing back costs at most B of lateness and one exit per B.
 * @param g            the vCPU's state
 * @param backstop_tsc B in guest TSC ticks; 0 turns the rule off
 */
static inline void pvtimer_guest_set_backstop(struct pvtimer_guest *g,
					      uint64_t backstop_tsc)
{
	g->backstop_tsc = backstop_tsc < PVTIMER_GUEST_HORIZON_MAX
				  ? backstop_tsc
				  : PVTIMER_GUEST_HORIZON_MAX;
}

/**
 * Where the hardware timer must go after a positive decision.
 * @param g the vCPU's state
 * @return the guest TSC to program the hardware timer at (meaningful only
 * right after a decision that returned a positive value).
 */
static inline uint64_t pvtimer_guest_hw_deadline(const struct pvtimer_guest *g)
{
	return g->hw_deadline_tsc;
}

/**
 * Tell the helpers that the caller disarmed its hardware timer (wrote 0 to
 * it), so that the next decision programs a backstop again if one is due.
 * @param g the vCPU's state
 */
static inline void pvtimer_guest_hw_disarmed(struct pvtimer_guest *g)
{
	g->hw_armed = 0;
}

/**
 * The deadline the host holds for this vCPU.
 * @param g the vCPU's state
 * @return that deadline (guest TSC), or 0 when none is pv-armed.
 */
static inline uint64_t pvtimer_guest_pv_deadline(const struct pvtimer_guest *g)
{
	return g->pv_armed ? g->deadline_tsc : 0;
}

/**
 * Effective next sync for this slot: the earlier of area and slot promise
 * (modular order). Two seq_cst loads.
 * @param g the vCPU's state
 * @return the promise (guest TSC), 0 when either says "not looking".
 */
static inline uint64_t pvtimer_guest_sync(const struct pvtimer_guest *g)
{
	uint64_t area = __atomic_load_n(&g->hdr->next_sync_tsc, __ATOMIC_SEQ_CST);
	uint64_t slot = __atomic_load_n(&g->slot->next_sync_tsc, __ATOMIC_SEQ_CST);

	if (area == PVTIMER_SYNC_NEVER || slot == PVTIMER_SYNC_NEVER)
		return PVTIMER_SYNC_NEVER;
	if (slot == PVTIMER_SYNC_FOLLOW_AREA)
		return area;
	return pvtimer_tsc_diff(slot, area) < 0 ? slot : area;
}

/* Write the guest line under the seqlock, then flag the slot pending: the
 * word OR, then the summary OR unless the summary bit is already set.
 *
 * Why skipping is sound (the invariant, spec §3.4): every writer of the
 * bitmap ORs the word before the summary, and the host clears a summary
 * bit only by exchanging the summary and then exchanging every word it
 * named (a pass never abandons a bit it took). So a summary bit that is set
 * when loaded after our word OR (both seq_cst) is cleared later by an
 * exchange, and the word exchange that follows it takes our word bit. The
 * seq_cst load also takes the summary OR's place in the promise argument
 * (§5): it orders the arm before the caller's later loads of host state.
 * The common case of a guest arming again before the host's next pass then
 * costs one locked RMW instead of two, on a line that stays in its cache. */
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
	if (!(__atomic_load_n(g->pending_summary, __ATOMIC_SEQ_CST) & g->summary_bit))
		__atomic_fetch_or(g->pending_summary, g->summary_bit,
				  __ATOMIC_SEQ_CST);
}

/**
 * Withdraw the deadline the host holds, if any. Never causes an exit. A
 * fire of the cancelled generation may still arrive if the host had already
 * decided to inject; pvtimer_guest_on_interrupt() reports it as spurious.
 * The hardware timer is the caller's: it is left as it is.
 * @param g the vCPU's state
 */
static inline void pvtimer_guest_cancel(struct pvtimer_guest *g)
{
	if (!g->pv_armed)
		return;
	pvtimer_guest__publish(g, 0, 0);
	g->pv_armed = 0;
}

/* The caller must now program the hardware timer at @at. */
static inline int pvtimer_guest__program(struct pvtimer_guest *g, uint64_t at,
					 int reason)
{
	g->hw_deadline_tsc = at;
	g->hw_armed = 1;
	g->hw_backstop = reason == PVTIMER_GUEST_BACKSTOP;
	return reason;
}

/* Give up the pv path for the armed deadline: hardware timer at D. */
static inline int pvtimer_guest__fall_back(struct pvtimer_guest *g, int reason)
{
	uint64_t deadline = g->deadline_tsc;

	pvtimer_guest_cancel(g);
	return pvtimer_guest__program(g, deadline, reason);
}

/* The host holds the deadline: keep the liveness rule. The hardware timer
 * must fire no later than now + B; one already due by then suffices (so a
 * busy guest re-arming pv deadlines programs it once per B at most). */
static inline int pvtimer_guest__held(struct pvtimer_guest *g, uint64_t now)
{
	uint64_t limit = now + g->backstop_tsc;

	if (!g->backstop_tsc)
		return PVTIMER_GUEST_PV;
	if (g->hw_armed && pvtimer_tsc_diff(g->hw_deadline_tsc, limit) <= 0) {
		/* whatever it was armed for, it now serves as the backstop:
		 * the deadline it was for has been superseded by ours */
		g->hw_backstop = 1;
		return PVTIMER_GUEST_PV;
	}
	return pvtimer_guest__program(g, limit, PVTIMER_GUEST_BACKSTOP);
}

/**
 * Arm the timer for @p deadline (guest TSC), following the fallback rule.
 * @param g        the vCPU's state
 * @param deadline guest TSC at which the timer must fire
 *
 * @return PVTIMER_GUEST_PV when the host now holds the deadline (no exit
 * taken); PVTIMER_GUEST_BACKSTOP when it does and the hardware timer must
 * be programmed at pvtimer_guest_hw_deadline() as the liveness backstop; or
 * a PVTIMER_GUEST_FALLBACK_* reason: program the hardware timer at
 * pvtimer_guest_hw_deadline() (= @p deadline); the host holds nothing.
 */
static inline int pvtimer_guest_arm(struct pvtimer_guest *g, uint64_t deadline)
{
	uint32_t flags;
	uint64_t sync, now;
	int reason;

	g->deadline_tsc = deadline;
	flags = __atomic_load_n(&g->hdr->host_flags, __ATOMIC_ACQUIRE);
	sync = pvtimer_guest_sync(g);
	/* The pre-check, an optional shortcut (spec §4): only the rule's
	 * conditions that need no clock (not active, not looking, deadline
	 * within the margin of the promise), so a pv arm reads the TSC once,
	 * in the decisive check. When they fail, so does the whole rule (they
	 * are part of it), and its reason is the one the caller gets; an arm
	 * whose clock-dependent conditions fail (PAST against a stale
	 * promise, TOO_FAR, STALE) is published and withdrawn by the
	 * decisive check, with the same reason. */
	if (!(flags & PVTIMER_HOST_ACTIVE) || sync == PVTIMER_SYNC_NEVER ||
	    pvtimer_rule__too_close(sync, g->margin_tsc, deadline))
		return pvtimer_guest__fall_back(
			g, pvtimer_fallback_reason(flags, sync, g->margin_tsc,
						   g->max_horizon_tsc, deadline,
						   PVTIMER_GUEST_READ_TSC()));

	pvtimer_guest__publish(g, deadline, PVTIMER_ARM_ARMED);
	g->pv_armed = 1;

	/* The decisive check: made after the arm is visible. */
	flags = __atomic_load_n(&g->hdr->host_flags, __ATOMIC_SEQ_CST);
	sync = pvtimer_guest_sync(g);
	now = PVTIMER_GUEST_READ_TSC();
	reason = pvtimer_fallback_reason(flags, sync, g->margin_tsc,
					 g->max_horizon_tsc, deadline, now);
	if (reason != PVTIMER_GUEST_PV)
		return pvtimer_guest__fall_back(g, reason);
	return pvtimer_guest__held(g, now);
}

/* Does the host still hold our generation? Reads the status word, the
 * flags and the promise once each, then the TSC. Returns PV (held, or not
 * yet seen but covered by a pass that will see it) or a fallback reason. */
static inline int pvtimer_guest__still_held(struct pvtimer_guest *g,
					    uint64_t *now_out)
{
	uint64_t word = __atomic_load_n(&g->slot->status_word, __ATOMIC_ACQUIRE);
	uint32_t flags = __atomic_load_n(&g->hdr->host_flags, __ATOMIC_SEQ_CST);
	uint64_t sync = pvtimer_guest_sync(g), now = PVTIMER_GUEST_READ_TSC();
	int mine = PVTIMER_STATUS_GEN(word) == g->gen;

	*now_out = now;
	if (pvtimer_tsc_diff(g->deadline_tsc, now) <= 0)
		return PVTIMER_GUEST_FALLBACK_PAST;
	if (mine) {
		switch (PVTIMER_STATUS_CODE(word)) {
		case PVTIMER_STATUS_REJECTED:
		case PVTIMER_STATUS_HANDBACK:
			return PVTIMER_GUEST_FALLBACK_REJECTED;
		case PVTIMER_STATUS_FIRED:
			/* fired before D, or the injection was lost */
			return PVTIMER_GUEST_FALLBACK_FIRED;
		case PVTIMER_STATUS_SEEN:
			/* held: only a host still keeping its promise will
			 * fire it (when its next pass is, against D, no
			 * longer matters) */
			if (!(flags & PVTIMER_HOST_ACTIVE))
				return PVTIMER_GUEST_FALLBACK_DISABLED;
			if (sync == PVTIMER_SYNC_NEVER ||
			    pvtimer_tsc_diff(now, sync) > 0)
				return PVTIMER_GUEST_FALLBACK_STALE;
			return PVTIMER_GUEST_PV;
		default:
			break;
		}
	}
	/* not seen yet: the pass that will see it must start by D, from a
	 * host keeping its promise (the rule with margin 0) */
	return pvtimer_fallback_reason(flags, sync, 0, UINT64_MAX,
				       g->deadline_tsc, now);
}

/**
 * Re-check, just before the vCPU halts, that the host still holds the
 * armed deadline (a host may have gone late, stopped or fired early).
 * @param g the vCPU's state
 *
 * @return PVTIMER_GUEST_PV (safe to halt), PVTIMER_GUEST_BACKSTOP (safe
 * once the hardware timer is programmed at pvtimer_guest_hw_deadline()),
 * or a PVTIMER_GUEST_FALLBACK_* reason (the pv arm is withdrawn: program the
 * hardware timer at pvtimer_guest_hw_deadline(), which is the deadline;
 * PAST means it is already due). PVTIMER_GUEST_PV when nothing is armed.
 */
static inline int pvtimer_guest_before_halt(struct pvtimer_guest *g)
{
	uint64_t now;
	int reason;

	if (!g->pv_armed)
		return PVTIMER_GUEST_PV;
	reason = pvtimer_guest__still_held(g, &now);
	if (reason != PVTIMER_GUEST_PV)
		return pvtimer_guest__fall_back(g, reason);
	return pvtimer_guest__held(g, now);
}

/**
 * Classify an interrupt on the pvtimer vector.
 * @param g the vCPU's state
 *
 * @return PVTIMER_GUEST_IRQ_EXPIRED when the armed deadline has passed (the
 * pv arm is consumed); PVTIMER_GUEST_IRQ_HANDBACK when the host gave the
 * deadline back or rejected it, and PVTIMER_GUEST_IRQ_EARLY when it fired
 * before the deadline: in both cases the pv arm is withdrawn and the caller
 * programs the hardware timer at pvtimer_guest_hw_deadline() (the deadline);
 * PVTIMER_GUEST_IRQ_SPURIOUS otherwise (a superseded generation).
 */
static inline int pvtimer_guest_on_interrupt(struct pvtimer_guest *g)
{
	uint64_t word;

	if (!g->pv_armed)
		return PVTIMER_GUEST_IRQ_SPURIOUS;
	if (pvtimer_tsc_diff(PVTIMER_GUEST_READ_TSC(), g->deadline_tsc) >= 0) {
		g->pv_armed = 0;
		return PVTIMER_GUEST_IRQ_EXPIRED;
	}
	word = __atomic_load_n(&g->slot->status_word, __ATOMIC_ACQUIRE);
	if (PVTIMER_STATUS_GEN(word) != g->gen)
		return PVTIMER_GUEST_IRQ_SPURIOUS;
	switch (PVTIMER_STATUS_CODE(word)) {
	case PVTIMER_STATUS_HANDBACK:
	case PVTIMER_STATUS_REJECTED:
		/* withdrawn, so a resumed host finds no stale arm */
		pvtimer_guest__fall_back(g, PVTIMER_GUEST_FALLBACK_REJECTED);
		return PVTIMER_GUEST_IRQ_HANDBACK;
	case PVTIMER_STATUS_FIRED:
		pvtimer_guest__fall_back(g, PVTIMER_GUEST_FALLBACK_FIRED);
		return PVTIMER_GUEST_IRQ_EARLY;
	default:
		return PVTIMER_GUEST_IRQ_SPURIOUS;
	}
}

/**
 * Account for an interrupt of the hardware timer (call it on every one).
 * @param g the vCPU's state
 *
 * @return PVTIMER_GUEST_HW_EXPIRED: run timers (a fallback timer expired,
 * or the pv deadline it backed passed undelivered: that arm is consumed);
 * PVTIMER_GUEST_HW_IGNORE: nothing to run or program (a backstop with
 * nothing left to back, or a stale interrupt while the host, with the
 * backstop off, still holds the deadline);
 * PVTIMER_GUEST_BACKSTOP: the host still holds the deadline, program the
 * hardware timer at pvtimer_guest_hw_deadline() (now + B); or a
 * PVTIMER_GUEST_FALLBACK_* reason: the host no longer keeps its promise,
 * the pv arm is withdrawn, program the hardware timer at the deadline.
 */
static inline int pvtimer_guest_on_hw_timer(struct pvtimer_guest *g)
{
	uint64_t now;
	int reason;

	g->hw_armed = 0;
	if (!g->pv_armed)
		return g->hw_backstop ? PVTIMER_GUEST_HW_IGNORE
				      : PVTIMER_GUEST_HW_EXPIRED;
	reason = pvtimer_guest__still_held(g, &now);
	if (reason == PVTIMER_GUEST_FALLBACK_PAST) {
		/* due and not delivered by the host (yet): deliver it here;
		 * a late pv fire then reads as spurious */
		pvtimer_guest_cancel(g);
		return PVTIMER_GUEST_HW_EXPIRED;
	}
	if (reason != PVTIMER_GUEST_PV)
		return pvtimer_guest__fall_back(g, reason);
	/* still held: re-arm the backstop if it is on; nothing otherwise
	 * (never HW_EXPIRED: the pv arm is not consumed) */
	reason = pvtimer_guest__held(g, now);
	return reason == PVTIMER_GUEST_PV ? PVTIMER_GUEST_HW_IGNORE : reason;
}

#endif /* EXITLESS_PVTIMER_GUEST_H */
