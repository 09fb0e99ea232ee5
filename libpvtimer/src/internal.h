/* SPDX-License-Identifier: MIT */
/* Private state of a pvtimer area handle. */
#ifndef PVTIMER_INTERNAL_H
#define PVTIMER_INTERNAL_H

#include <stdbool.h>

/* The ABI is x86-64 by construction (TSC time base, CPUID discovery, 8-bit
 * vectors, x86 MSIs): meson builds this library on x86-64 hosts only. */
#if !defined(__x86_64__)
#error "libpvtimer is x86-64 only (docs/pvtimer-abi.md)"
#endif

#include "exitless/pvtimer.h"
#include "exitless/pvtimer_geometry.h"
#include "exitless/pvtimer_rule.h"

/* Caller-allocated structs have a fixed size for ABI major 1: they grow
 * into their reserved tails only (pvtimer.h). */
_Static_assert(sizeof(struct pvtimer_slot_snapshot) == 64, "snapshot size");
_Static_assert(sizeof(struct pvtimer_pending_iter) == 64, "iterator size");
_Static_assert(sizeof(struct pvtimer_tsc_map) == 48, "tsc map size");

/* Host-private memory of one slot: what this host decided, kept out of
 * guest memory so that nothing a guest writes can change it. */
struct pvtimer_slot_host {
	uint64_t read_deadline;  /* last valid armed generation read */
	uint64_t seen_deadline;  /* the generation acked (status SEEN) */
	uint64_t fired_deadline; /* the generation fired */
	uint64_t status;         /* last status word written */
	uint32_t read_gen;
	uint32_t seen_gen;
	uint32_t fired_gen;
	uint32_t rejected_gen;
	uint8_t read_valid;
	uint8_t seen_valid;
	uint8_t fired_valid;
	uint8_t rejected_valid;
};

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
	bool active;        /* what host_flags says; the header is write-only */
	uint32_t epoch;     /* what host_epoch says */
	struct pvtimer_abi_header *hdr;
	struct pvtimer_abi_pending *pending;
	char *slots;
	struct pvtimer_slot_host *host; /* slot_count entries */
	struct pvtimer_area_stats stats; /* updated with relaxed atomics */
};

static inline struct pvtimer_abi_slot *pvtimer_slot_at(struct pvtimer_area *a,
						       uint32_t i)
{
	return (struct pvtimer_abi_slot *)(a->slots +
					   (size_t)i * PVTIMER_ABI_SLOT_STRIDE);
}

/* Largest horizon or margin: modular TSC differences stay below 2^62. */
#define PVTIMER_HORIZON_MAX (1ull << 62)

/* The guest line as one seqlock read saw it (host.c). */
struct pvtimer_guest_line {
	uint64_t deadline;
	uint32_t gen;
	uint8_t vector;
	uint8_t flags;
};
int pvtimer_read_guest_line(struct pvtimer_abi_slot *s,
			    struct pvtimer_guest_line *out);

/* pvtimer_host_read_slot() for a slot index the caller checked (host.c). */
int pvtimer_read_slot_checked(struct pvtimer_area *a, uint32_t slot,
			      uint64_t now_tsc,
			      struct pvtimer_slot_snapshot *snap);

/* The pending bitmap (pending.c): take the summary (a load first, the
 * exchange only when it is non-zero; bits >= pending_words dropped and
 * counted), take one word (exchange; bits naming no slot dropped and
 * counted). */
uint64_t pvtimer_take_summary(struct pvtimer_area *a);
uint64_t pvtimer_take_word(struct pvtimer_area *a, uint32_t w);

/* Only the servicing thread counts; readers on other threads load them
 * relaxed (pvtimer_area_get_stats()). */
#define PVTIMER_COUNT(a, field)                                             \
	__atomic_store_n(&(a)->stats.field,                                 \
			 __atomic_load_n(&(a)->stats.field, __ATOMIC_RELAXED) + 1, \
			 __ATOMIC_RELAXED)

/* A promise is never published as 0 (NEVER) or ~0 (FOLLOW, the slot's
 * sentinel): promising a tick or two earlier is always allowed. */
static inline uint64_t pvtimer_sync_value(uint64_t tsc)
{
	if (tsc == PVTIMER_SYNC_NEVER)
		return tsc - 2;
	if (tsc == PVTIMER_SYNC_FOLLOW_AREA)
		return tsc - 1;
	return tsc;
}

#endif
