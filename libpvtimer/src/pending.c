/* SPDX-License-Identifier: MIT */
/* The two-level pending bitmap: found changes cost O(changes), not O(slots). */
#include <errno.h>

#include "internal.h"

/* A pass starts with a load of the summary and exchanges it only when the
 * load saw a bit: a host with nothing pending writes no guest line (the
 * summary line stays shared instead of bouncing to the host on every pass).
 * Loading first changes nothing in the handshake (§5): the load is seq_cst
 * like the exchange, so an OR ordered before it is seen by it (and then
 * taken by the exchange), and a guest whose OR comes after it loads a
 * promise published before it, which covers a later pass. */
uint64_t pvtimer_take_summary(struct pvtimer_area *a)
{
	uint64_t valid = a->pending_words >= 64 ? ~0ull
						: (1ull << a->pending_words) - 1;
	uint64_t summary = __atomic_load_n(&a->pending->summary, __ATOMIC_SEQ_CST);

	if (!summary)
		return 0;
	summary = __atomic_exchange_n(&a->pending->summary, 0, __ATOMIC_SEQ_CST);
	if (summary & ~valid)
		PVTIMER_COUNT(a, stray_pending);
	return summary & valid;
}

void pvtimer_host_pending_begin(struct pvtimer_area *a,
				struct pvtimer_pending_iter *it)
{
	it->summary = pvtimer_take_summary(a);
	it->word = 0;
	it->word_index = 0;
	it->visited_words = 0;
	for (unsigned int i = 0; i < sizeof(it->reserved) / sizeof(it->reserved[0]);
	     i++)
		it->reserved[i] = 0;
}

/* One exchange per word the summary named; bits naming no slot dropped. */
uint64_t pvtimer_take_word(struct pvtimer_area *a, uint32_t w)
{
	uint64_t bits = __atomic_exchange_n(&a->pending->words[w], 0,
					    __ATOMIC_SEQ_CST);
	uint32_t first = w * 64;
	uint32_t left = a->slot_count - first;
	uint64_t valid = left >= 64 ? ~0ull : (1ull << left) - 1;

	if (bits & ~valid)
		PVTIMER_COUNT(a, stray_pending);
	return bits & valid;
}

int pvtimer_host_pending_next(struct pvtimer_area *a,
			      struct pvtimer_pending_iter *it, uint32_t *slot)
{
	while (!it->word) {
		if (!it->summary)
			return 0;
		it->word_index = (uint32_t)__builtin_ctzll(it->summary);
		it->summary &= it->summary - 1;
		it->visited_words++;
		it->word = pvtimer_take_word(a, it->word_index);
	}
	*slot = it->word_index * 64 + (uint32_t)__builtin_ctzll(it->word);
	it->word &= it->word - 1;
	return 1;
}

int pvtimer_host_requeue(struct pvtimer_area *a, uint32_t slot)
{
	if (slot >= a->slot_count)
		return -ERANGE;
	__atomic_fetch_or(&a->pending->words[slot / 64], 1ull << (slot % 64),
			  __ATOMIC_SEQ_CST);
	__atomic_fetch_or(&a->pending->summary, 1ull << (slot / 64),
			  __ATOMIC_SEQ_CST);
	return 0;
}

/* seq_cst RMW: ordered against the guest's seq_cst OR of the same bit, so
 * an arm published before the guest saw a withdrawn promise is found by
 * the caller's read that follows (detach, §5). */
int pvtimer_host_take_pending(struct pvtimer_area *a, uint32_t slot)
{
	uint64_t bit;

	if (slot >= a->slot_count)
		return -ERANGE;
	bit = 1ull << (slot % 64);
	return (__atomic_fetch_and(&a->pending->words[slot / 64], ~bit,
				   __ATOMIC_SEQ_CST) & bit) != 0;
}
