/* SPDX-License-Identifier: MIT */
/* Batch host calls (1.2): one pass's pending bits as a mask, and the reads
 * of all the slots it names, without one cross-library call per slot. The
 * ordering rules are those of pending.c and the spec (§3.4, §5). */
#include <errno.h>

#include "internal.h"

/* How many slots ahead read_slots prefetches the guest line: the loads of
 * one slot's seqlock overlap the misses of the next few. A prefetch reads
 * nothing the host then uses, so it is harmless on hostile memory. */
#define READ_PREFETCH_AHEAD 4

int pvtimer_host_take_pending_mask(struct pvtimer_area *a, uint64_t *mask,
				   uint32_t nwords)
{
	uint64_t summary;
	int newly = 0;

	if (!a || !mask || nwords < a->pending_words)
		return -EINVAL;
	summary = pvtimer_take_summary(a);
	/* each word the summary names is exchanged once: a guest OR-ing in a
	 * loop cannot make this visit more than pending_words words */
	while (summary) {
		uint32_t w = (uint32_t)__builtin_ctzll(summary);
		uint64_t bits = pvtimer_take_word(a, w);

		summary &= summary - 1;
		newly += __builtin_popcountll(bits & ~mask[w]);
		mask[w] |= bits;
	}
	return newly;
}

/* Every bit must name a slot: a bit the host gives back lands in guest
 * memory, and one naming no slot would only be dropped (and counted as
 * stray) by the next pass. */
static int mask_valid(const struct pvtimer_area *a, const uint64_t *mask,
		      uint32_t nwords)
{
	uint32_t last = a->pending_words - 1;
	uint32_t left = a->slot_count - last * 64;
	uint64_t last_valid = left >= 64 ? ~0ull : (1ull << left) - 1;

	if (mask[last] & ~last_valid)
		return 0;
	for (uint32_t w = a->pending_words; w < nwords; w++)
		if (mask[w])
			return 0;
	return 1;
}

/* Word ORs first, then the summary OR: the summary never names a word
 * whose bits are not already there (the guest's rule, §3.4), so a guest
 * that skips its summary OR because it finds the bit set is still found. */
int pvtimer_host_requeue_mask(struct pvtimer_area *a, const uint64_t *mask,
			      uint32_t nwords)
{
	uint64_t summary = 0;

	if (!a || !mask || nwords < a->pending_words ||
	    !mask_valid(a, mask, nwords))
		return -EINVAL;
	for (uint32_t w = 0; w < a->pending_words; w++) {
		if (!mask[w])
			continue;
		__atomic_fetch_or(&a->pending->words[w], mask[w],
				  __ATOMIC_SEQ_CST);
		summary |= 1ull << w;
	}
	if (summary)
		__atomic_fetch_or(&a->pending->summary, summary,
				  __ATOMIC_SEQ_CST);
	return 0;
}

int pvtimer_host_read_slots(struct pvtimer_area *a, const uint32_t *slots,
			    uint32_t n, uint64_t now_tsc,
			    struct pvtimer_slot_snapshot *snaps, int *rcs)
{
	if (!a || (n && (!slots || !snaps || !rcs)))
		return -EINVAL;
	/* all or nothing: a bad index is the caller's bug, not the guest's */
	for (uint32_t i = 0; i < n; i++)
		if (slots[i] >= a->slot_count)
			return -EINVAL;
	for (uint32_t i = 0; i < n && i < READ_PREFETCH_AHEAD; i++)
		__builtin_prefetch(pvtimer_slot_at(a, slots[i]), 0, 3);
	for (uint32_t i = 0; i < n; i++) {
		if (i + READ_PREFETCH_AHEAD < n)
			__builtin_prefetch(pvtimer_slot_at(a, slots[i + READ_PREFETCH_AHEAD]),
					   0, 3);
		rcs[i] = pvtimer_read_slot_checked(a, slots[i], now_tsc, &snaps[i]);
	}
	return 0;
}
