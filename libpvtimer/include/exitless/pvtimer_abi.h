/* SPDX-License-Identifier: MIT */
/**
 * @file pvtimer_abi.h
 * @brief The exitless pvtimer shared-memory ABI, version 1.1 (x86-64).
 *
 * This header is the contract between a guest kernel and a host timer agent.
 * It describes bytes, not behaviour: docs/pvtimer-abi.md is the normative
 * specification (who writes each field, memory ordering, the fallback rule).
 *
 * Rules this header keeps so that it can be shared by a freestanding guest
 * kernel and a hosted VMM alike:
 *  - only <stdint.h> and <stddef.h> (both exist in freestanding C99);
 *  - fixed-width little-endian fields, explicit padding, no pointers, no
 *    `long`, no enums, no bitfields;
 *  - every field has exactly one writer; guest-written and host-written
 *    fields sit on different 64-byte cache lines;
 *  - it compiles alone with `-std=c99 -pedantic -ffreestanding -Werror`.
 *
 * Changing any offset or size here is an ABI break (new major). New fields
 * go into reserved space, gated by a feature bit, with a minor bump.
 */
#ifndef EXITLESS_PVTIMER_ABI_H
#define EXITLESS_PVTIMER_ABI_H

#include <stddef.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the pvtimer ABI is little-endian; add byte swapping before porting"
#endif

/* ------------------------------------------------------------------------ */
/* Identification and versioning                                            */
/* ------------------------------------------------------------------------ */

/** Magic at offset 0: the bytes "XPTM" in memory order. */
#define PVTIMER_ABI_MAGIC 0x4d545058u
/** ABI major: a reader that does not know this major must not use the area. */
#define PVTIMER_ABI_MAJOR 1u
/** ABI minor: new fields in reserved space, each gated by a feature bit. */
#define PVTIMER_ABI_MINOR 1u

/** Cache-line size the layout is built around. */
#define PVTIMER_ABI_CACHELINE 64u
/** Size of the header block at offset 0. */
#define PVTIMER_ABI_HEADER_SIZE 256u
/** Size of one per-vCPU slot (one guest line, one host line). */
#define PVTIMER_ABI_SLOT_STRIDE 128u
/** Pending bitmap: one summary word covers 64 words of 64 slots. */
#define PVTIMER_ABI_MAX_SLOTS 4096u
/** The area is mapped into guest physical memory in whole pages. */
#define PVTIMER_ABI_PAGE_SIZE 4096u

/* ------------------------------------------------------------------------ */
/* Feature bits (header.features, host-written)                             */
/* ------------------------------------------------------------------------ */

/** The host writes slot.fired_tsc when it injects. */
#define PVTIMER_F_FIRED_TSC (1ull << 0)
/** All feature bits defined by ABI 1.0. */
#define PVTIMER_F_ALL_1_0 PVTIMER_F_FIRED_TSC
/** 1.1: header.vector_min/vector_max hold the vectors the host accepts. */
#define PVTIMER_F_VECTOR_RANGE (1ull << 1)
/** All feature bits defined by ABI 1.1. */
#define PVTIMER_F_ALL_1_1 (PVTIMER_F_ALL_1_0 | PVTIMER_F_VECTOR_RANGE)

/* ------------------------------------------------------------------------ */
/* Header flags (header.host_flags, host-written)                           */
/* ------------------------------------------------------------------------ */

/** The host is servicing the area: arms may use the pvtimer path. */
#define PVTIMER_HOST_ACTIVE (1u << 0)

/* ------------------------------------------------------------------------ */
/* Slot arm flags (slot.arm_flags, guest-written)                           */
/* ------------------------------------------------------------------------ */

/** deadline_tsc holds a live deadline; clear means cancelled. */
#define PVTIMER_ARM_ARMED (1u << 0)
/** All arm flags defined by ABI 1.0; any other bit makes the slot invalid. */
#define PVTIMER_ARM_FLAGS_ALL PVTIMER_ARM_ARMED

/** Lowest vector a slot may name (0..31 are CPU exceptions). */
#define PVTIMER_VECTOR_MIN 32u
/** Highest vector a slot may name. */
#define PVTIMER_VECTOR_MAX 255u

/* ------------------------------------------------------------------------ */
/* Slot status (slot.status_word, host-written)                             */
/* ------------------------------------------------------------------------ */

/* status_word packs three values so a guest reads them in one load:
 * bits 0..31 the arm generation the status refers to, bits 32..39 the
 * status, bits 40..47 the reject reason (REJECTED only). */
#define PVTIMER_STATUS_NONE 0u     /**< the host has not looked yet */
#define PVTIMER_STATUS_SEEN 1u     /**< the host holds this generation */
#define PVTIMER_STATUS_FIRED 2u    /**< the host injected this generation */
#define PVTIMER_STATUS_REJECTED 3u /**< invalid; the guest must fall back */
#define PVTIMER_STATUS_HANDBACK 4u /**< host stopping: re-arm in hardware */

#define PVTIMER_REJECT_NONE 0u
#define PVTIMER_REJECT_FLAGS 1u  /**< unknown bits in arm_flags */
#define PVTIMER_REJECT_VECTOR 2u /**< vector outside the allowed range */
#define PVTIMER_REJECT_FAR 3u    /**< deadline beyond now + max_horizon */
/** Retired in 1.1 (a past deadline fires at once); never written. */
#define PVTIMER_REJECT_PAST 4u

/** Build a status word. */
#define PVTIMER_STATUS_WORD(gen, status, reason)                             \
	((uint64_t)(uint32_t)(gen) | ((uint64_t)((status) & 0xffu) << 32) |  \
	 ((uint64_t)((reason) & 0xffu) << 40))
/** Generation a status word refers to. */
#define PVTIMER_STATUS_GEN(word) ((uint32_t)(word))
/** Status code of a status word. */
#define PVTIMER_STATUS_CODE(word) ((uint32_t)(((word) >> 32) & 0xffu))
/** Reject reason of a status word. */
#define PVTIMER_STATUS_REASON(word) ((uint32_t)(((word) >> 40) & 0xffu))

/* ------------------------------------------------------------------------ */
/* Discovery: CPUID leaves in the hypervisor range                          */
/* ------------------------------------------------------------------------ */

/* A guest scans 0x40000000 + 0x100*k (k = 0..255), as for every
 * hypervisor-range signature, and stops at the first leaf whose EBX:ECX:EDX
 * spell "ExitlessPvTm". No MSR is defined by this ABI. */
/** Signature leaf: EAX = highest leaf of the block. */
#define PVTIMER_CPUID_SIGNATURE_LEAF_DEFAULT 0x40000f00u
/** "Exit" "less" "PvTm" as EBX, ECX, EDX. */
#define PVTIMER_CPUID_SIG_EBX 0x74697845u
#define PVTIMER_CPUID_SIG_ECX 0x7373656cu
#define PVTIMER_CPUID_SIG_EDX 0x6d547650u
/** Offset of the area leaf from the signature leaf: EAX = GPA bits 31..12
 * (bits 11..0 zero), EBX = GPA bits 63..32, ECX = this vCPU's slot index
 * (PVTIMER_CPUID_NO_SLOT if none), EDX = area size in 4 KiB pages. */
#define PVTIMER_CPUID_AREA_LEAF_OFFSET 1u
#define PVTIMER_CPUID_NO_SLOT 0xffffffffu

/* ------------------------------------------------------------------------ */
/* Layout                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * Area header, offset 0, 256 bytes, written only by the host.
 * Line 0 is set once before the area is shown to the guest; line 1 changes
 * while the host runs; lines 2-3 are reserved.
 */
struct pvtimer_abi_header {
	/* line 0: geometry and limits, constant after publication */
	uint32_t magic;          /**< 0x00 PVTIMER_ABI_MAGIC */
	uint16_t abi_major;      /**< 0x04 */
	uint16_t abi_minor;      /**< 0x06 */
	uint64_t features;       /**< 0x08 PVTIMER_F_* offered by the host */
	uint32_t header_size;    /**< 0x10 PVTIMER_ABI_HEADER_SIZE */
	uint32_t slot_count;     /**< 0x14 1..PVTIMER_ABI_MAX_SLOTS */
	uint32_t slot_stride;    /**< 0x18 PVTIMER_ABI_SLOT_STRIDE */
	uint32_t slots_offset;   /**< 0x1c byte offset of slot 0 */
	uint32_t pending_offset; /**< 0x20 byte offset of the pending block */
	uint32_t pending_words;  /**< 0x24 ceil(slot_count / 64) */
	uint32_t area_size;      /**< 0x28 total bytes, a multiple of 4096 */
	uint32_t tsc_khz;        /**< 0x2c guest TSC rate, informational */
	uint64_t margin_tsc;     /**< 0x30 deadline must be >= sync + margin */
	uint64_t max_horizon_tsc; /**< 0x38 deadline must be <= now + horizon */
	/* line 1: liveness, rewritten by the running host */
	uint32_t host_flags;    /**< 0x40 PVTIMER_HOST_ACTIVE */
	uint32_t host_epoch;    /**< 0x44 bumped on every start/resume */
	uint64_t next_sync_tsc; /**< 0x48 host scans pending again by this TSC */
	uint64_t heartbeat_tsc; /**< 0x50 TSC of the host's last publication */
	uint8_t reserved1[40];  /**< 0x58 zero */
	/* line 2: constant after publication, like line 0 (1.1) */
	uint8_t vector_min;     /**< 0x80 lowest accepted vector (F_VECTOR_RANGE) */
	uint8_t vector_max;     /**< 0x81 highest accepted vector (F_VECTOR_RANGE) */
	uint8_t reserved2[62];  /**< 0x82 zero */
	/* line 3 */
	uint8_t reserved3[64];  /**< 0xc0 zero */
};

/**
 * Pending block at header.pending_offset. Guests set bits with atomic OR;
 * the host takes them with atomic exchange. The summary word and the slot
 * words are on different lines so a host draining the summary does not
 * bounce the line that every guest is OR-ing slot bits into.
 */
struct pvtimer_abi_pending {
	uint64_t summary;       /**< +0x00 bit w: words[w] may be non-zero */
	uint8_t reserved[56];   /**< +0x08 zero */
	uint64_t words[];       /**< +0x40 bit (i % 64) of words[i / 64]: slot i */
};

/**
 * One per-vCPU slot, PVTIMER_ABI_SLOT_STRIDE bytes at
 * slots_offset + index * slot_stride.
 * Line 0 (0x00-0x3f) is written only by the guest vCPU that owns the slot,
 * under the seqlock `seq`; line 1 (0x40-0x7f) only by the host.
 */
struct pvtimer_abi_slot {
	/* guest line */
	uint32_t seq;          /**< 0x00 seqlock: odd while the guest writes */
	uint32_t arm_gen;      /**< 0x04 +1 on every arm and every cancel */
	uint64_t deadline_tsc; /**< 0x08 guest TSC at which to inject */
	uint8_t vector;        /**< 0x10 interrupt vector to inject */
	uint8_t arm_flags;     /**< 0x11 PVTIMER_ARM_* */
	uint16_t reserved0;    /**< 0x12 zero */
	uint32_t guest_features; /**< 0x14 1.1: features the guest uses; no bit
				  *   is defined yet, so 0 (see the spec, §9) */
	uint8_t reserved2[40]; /**< 0x18 zero */
	/* host line */
	uint64_t next_sync_tsc; /**< 0x40 per-slot promise; see the spec */
	uint64_t status_word;   /**< 0x48 PVTIMER_STATUS_WORD() */
	uint32_t fired_gen;     /**< 0x50 last generation injected */
	uint32_t reserved3;     /**< 0x54 zero */
	uint64_t fired_tsc;     /**< 0x58 guest TSC of that injection */
	uint8_t reserved4[32];  /**< 0x60 zero */
};

/** Per-slot next_sync_tsc meaning "follow the header's next_sync_tsc". */
#define PVTIMER_SYNC_FOLLOW_AREA UINT64_MAX
/** next_sync_tsc meaning "not looking": every arm must fall back. */
#define PVTIMER_SYNC_NEVER 0ull

/* ------------------------------------------------------------------------ */
/* Layout asserts (C11 _Static_assert; an array-size trick in C99)          */
/* ------------------------------------------------------------------------ */

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define PVTIMER_ABI_ASSERT(cond, name) _Static_assert(cond, #name)
#else
#define PVTIMER_ABI_ASSERT(cond, name)                                        \
	typedef char pvtimer_abi_assert_##name[(cond) ? 1 : -1]
#endif

PVTIMER_ABI_ASSERT(sizeof(struct pvtimer_abi_header) == 256, header_size);
PVTIMER_ABI_ASSERT(offsetof(struct pvtimer_abi_header, host_flags) == 0x40,
		   header_line1);
PVTIMER_ABI_ASSERT(offsetof(struct pvtimer_abi_header, vector_min) == 0x80,
		   header_line2);
PVTIMER_ABI_ASSERT(offsetof(struct pvtimer_abi_header, reserved3) == 0xc0,
		   header_line3);
PVTIMER_ABI_ASSERT(offsetof(struct pvtimer_abi_pending, words) == 0x40,
		   pending_words);
PVTIMER_ABI_ASSERT(sizeof(struct pvtimer_abi_slot) == 128, slot_size);
PVTIMER_ABI_ASSERT(offsetof(struct pvtimer_abi_slot, next_sync_tsc) == 0x40,
		   slot_host_line);

#endif /* EXITLESS_PVTIMER_ABI_H */
