/* SPDX-License-Identifier: MIT */
/* The tests' raw view of an area's shared memory: where a slot and the
 * pending bitmap live (from the header the library wrote), and a guest
 * line written the raw way a 1.0 or hostile guest would, bypassing the
 * guest helpers. */
#ifndef EXITLESS_TEST_AREA_VIEW_H
#define EXITLESS_TEST_AREA_VIEW_H

#include <stdint.h>

#include "exitless/pvtimer.h"
#include "exitless/pvtimer_abi.h"

static inline struct pvtimer_abi_slot *test_slot_of(struct pvtimer_area *a,
						    uint32_t i)
{
	const struct pvtimer_abi_header *h = pvtimer_area_mem(a);

	return (struct pvtimer_abi_slot *)((char *)pvtimer_area_mem(a) +
					   h->slots_offset +
					   (uint64_t)i * PVTIMER_ABI_SLOT_STRIDE);
}

static inline struct pvtimer_abi_pending *test_pending_of(struct pvtimer_area *a)
{
	const struct pvtimer_abi_header *h = pvtimer_area_mem(a);

	return (struct pvtimer_abi_pending *)((char *)pvtimer_area_mem(a) +
					      h->pending_offset);
}

/* A new generation in one go (seq odd-even skipped: no torn window). */
static inline void test_arm_raw(struct pvtimer_abi_slot *s, uint64_t deadline,
				uint8_t vector, uint8_t flags)
{
	s->seq += 2;
	s->arm_gen++;
	s->deadline_tsc = deadline;
	s->vector = vector;
	s->arm_flags = flags;
}

#endif
