/* SPDX-License-Identifier: MIT */
/* Private state of a pvtimer area handle. */
#ifndef PVTIMER_INTERNAL_H
#define PVTIMER_INTERNAL_H

#include <stdbool.h>

#include "exitless/pvtimer.h"

struct pvtimer_area {
	void *mem;
	size_t bytes;
	int memfd; /* -1 when the caller owns the memory */
	uint32_t slot_count;
	uint32_t pending_words;
	uint64_t features;
	uint64_t max_horizon_tsc;
	uint8_t vector_min;
	uint8_t vector_max;
	struct pvtimer_abi_header *hdr;
	struct pvtimer_abi_pending *pending;
	char *slots;
	/* Host-private: last generation fired per slot, bit 32 = valid. Kept
	 * out of guest memory so a guest cannot make the host fire twice. */
	uint64_t *last_fired;
	struct pvtimer_area_stats stats; /* updated with relaxed atomics */
};

static inline struct pvtimer_abi_slot *pvtimer_slot_at(struct pvtimer_area *a,
						       uint32_t i)
{
	return (struct pvtimer_abi_slot *)(a->slots +
					   (size_t)i * PVTIMER_ABI_SLOT_STRIDE);
}

#define PVTIMER_FIRED_VALID (1ull << 32)

#define PVTIMER_COUNT(a, field) \
	__atomic_fetch_add(&(a)->stats.field, 1, __ATOMIC_RELAXED)

#endif
