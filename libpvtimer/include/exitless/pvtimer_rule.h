/* SPDX-License-Identifier: MIT */
/**
 * @file pvtimer_rule.h
 * @brief The pvtimer fallback rule (docs/pvtimer-abi.md §6) as a pure
 * function, its decision codes and modular TSC order: no state, no memory
 * access, so a guest, a host or a model can evaluate it alike.
 *
 * Freestanding and `static inline`, like pvtimer_guest.h, which builds the
 * stateful guest protocol on it.
 */
#ifndef EXITLESS_PVTIMER_RULE_H
#define EXITLESS_PVTIMER_RULE_H

#include "pvtimer_abi.h"

/* Decisions: 0, or why the hardware timer must be programmed at
 * pvtimer_guest_hw_deadline(). */
#define PVTIMER_GUEST_PV 0                 /**< nothing to program */
#define PVTIMER_GUEST_FALLBACK_DISABLED 1  /**< host not active */
#define PVTIMER_GUEST_FALLBACK_PAST 2      /**< deadline <= now */
#define PVTIMER_GUEST_FALLBACK_TOO_FAR 3   /**< beyond now + max_horizon */
#define PVTIMER_GUEST_FALLBACK_STALE 4     /**< now > next sync: host late */
#define PVTIMER_GUEST_FALLBACK_TOO_CLOSE 5 /**< deadline < sync + margin */
#define PVTIMER_GUEST_FALLBACK_REJECTED 6  /**< rejected or handed back */
/** The host says fired, but the interrupt was not seen (or came early). */
#define PVTIMER_GUEST_FALLBACK_FIRED 7
/** The host holds it; the hardware timer is only the liveness backstop. */
#define PVTIMER_GUEST_BACKSTOP 8

/**
 * Modular TSC order, as the hardware's: how far @p a is after @p b.
 * @param a a TSC value
 * @param b another, less than 2^63 away
 * @return a - b as a signed distance (negative: @p a is before @p b).
 */
static inline int64_t pvtimer_tsc_diff(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b);
}

/* The rule's TOO_CLOSE condition: @deadline before @sync, or within
 * @margin after it. Needs no clock, so the arm's shortcut check uses it
 * too (pvtimer_guest_arm()). */
static inline int pvtimer_rule__too_close(uint64_t sync, uint64_t margin,
					  uint64_t deadline)
{
	int64_t after_sync = pvtimer_tsc_diff(deadline, sync);

	return after_sync < 0 || (uint64_t)after_sync < margin;
}

/**
 * The fallback rule of docs/pvtimer-abi.md §6, as a pure function, in
 * modular TSC arithmetic.
 *
 * @param host_flags header.host_flags as read
 * @param sync       effective next sync (pvtimer_guest_sync()); 0 = never
 * @param margin     header.margin_tsc
 * @param horizon    header.max_horizon_tsc (below 2^62)
 * @param deadline   the guest TSC deadline
 * @param now        the guest TSC, read after the arm was made visible
 * @return PVTIMER_GUEST_PV or a PVTIMER_GUEST_FALLBACK_* reason.
 */
static inline int pvtimer_fallback_reason(uint32_t host_flags, uint64_t sync,
					  uint64_t margin, uint64_t horizon,
					  uint64_t deadline, uint64_t now)
{
	int64_t ahead = pvtimer_tsc_diff(deadline, now);

	if (!(host_flags & PVTIMER_HOST_ACTIVE))
		return PVTIMER_GUEST_FALLBACK_DISABLED;
	if (ahead <= 0)
		return PVTIMER_GUEST_FALLBACK_PAST;
	if ((uint64_t)ahead > horizon)
		return PVTIMER_GUEST_FALLBACK_TOO_FAR;
	if (sync == PVTIMER_SYNC_NEVER || pvtimer_tsc_diff(now, sync) > 0)
		return PVTIMER_GUEST_FALLBACK_STALE;
	if (pvtimer_rule__too_close(sync, margin, deadline))
		return PVTIMER_GUEST_FALLBACK_TOO_CLOSE;
	return PVTIMER_GUEST_PV;
}

#endif /* EXITLESS_PVTIMER_RULE_H */
