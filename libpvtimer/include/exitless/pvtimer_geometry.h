/* SPDX-License-Identifier: MIT */
/**
 * @file pvtimer_geometry.h
 * @brief The one definition of a valid pvtimer area geometry, shared by the
 * guest helpers and the host library.
 *
 * In ABI major 1 every geometry field of the header is a function of
 * slot_count (docs/pvtimer-abi.md §3): header_size 256, slot_stride 128,
 * pending_offset 0x100, pending_words ceil(N/64), slots_offset and
 * area_size as computed below. A reader therefore recomputes them from
 * slot_count and accepts the header only when every field is equal: there
 * is no other valid geometry for a 1.x reader to guess at.
 *
 * Freestanding and `static inline`, like pvtimer_guest.h.
 */
#ifndef EXITLESS_PVTIMER_GEOMETRY_H
#define EXITLESS_PVTIMER_GEOMETRY_H

#include "pvtimer_abi.h"

/** Geometry of an area of a given slot count (every field a 1.x host
 * writes into header line 0 that depends on it). */
struct pvtimer_geometry {
	uint32_t slot_count;
	uint32_t pending_offset;
	uint32_t pending_words;
	uint32_t slots_offset;
	uint32_t area_size;
};

#define PVTIMER_GEOMETRY__ROUND_UP(x, a) ((((x) + (a)-1u) / (a)) * (a))

/**
 * Compute the geometry of an area with @p slot_count slots.
 * @param slot_count N, 1..PVTIMER_ABI_MAX_SLOTS
 * @param g          receives the geometry
 * @return 0, or -22 (EINVAL) when @p slot_count is 0 or above
 * PVTIMER_ABI_MAX_SLOTS.
 */
static inline int pvtimer_geometry_for(uint32_t slot_count,
				       struct pvtimer_geometry *g)
{
	uint32_t pending_bytes;

	if (slot_count == 0 || slot_count > PVTIMER_ABI_MAX_SLOTS)
		return -22;
	g->slot_count = slot_count;
	g->pending_offset = PVTIMER_ABI_HEADER_SIZE;
	g->pending_words = (slot_count + 63u) / 64u;
	pending_bytes = (uint32_t)offsetof(struct pvtimer_abi_pending, words) +
			PVTIMER_GEOMETRY__ROUND_UP(g->pending_words * 8u,
						   PVTIMER_ABI_CACHELINE);
	/* Slots start on a 128-byte boundary: adjacent-line prefetchers pull
	 * 128-byte pairs, so a slot never shares a pair with the bitmap. */
	g->slots_offset = PVTIMER_GEOMETRY__ROUND_UP(
		g->pending_offset + pending_bytes, PVTIMER_ABI_SLOT_STRIDE);
	g->area_size = PVTIMER_GEOMETRY__ROUND_UP(
		g->slots_offset + slot_count * PVTIMER_ABI_SLOT_STRIDE,
		PVTIMER_ABI_PAGE_SIZE);
	return 0;
}

/**
 * Validate a header that the caller has copied out of shared memory (the
 * copy is what it will use afterwards; the memory itself may change).
 *
 * @param h       the caller's private copy of the header
 * @param mapped  bytes the caller has mapped at the area's start
 * @param g       receives the geometry on success
 * @return 0; -22 (EINVAL) bad magic or geometry, or an area larger than
 * @p mapped; -71 (EPROTO) an ABI major other than 1.
 */
static inline int pvtimer_geometry_check(const struct pvtimer_abi_header *h,
					 uint64_t mapped,
					 struct pvtimer_geometry *g)
{
	if (h->magic != PVTIMER_ABI_MAGIC)
		return -22;
	if (h->abi_major != PVTIMER_ABI_MAJOR)
		return -71;
	if (pvtimer_geometry_for(h->slot_count, g) < 0 ||
	    h->header_size != PVTIMER_ABI_HEADER_SIZE ||
	    h->slot_stride != PVTIMER_ABI_SLOT_STRIDE ||
	    h->pending_offset != g->pending_offset ||
	    h->pending_words != g->pending_words ||
	    h->slots_offset != g->slots_offset ||
	    h->area_size != g->area_size || h->area_size > mapped)
		return -22;
	return 0;
}

#endif /* EXITLESS_PVTIMER_GEOMETRY_H */
