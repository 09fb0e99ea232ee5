/* SPDX-License-Identifier: MIT */
/**
 * @file pvtimer.h
 * @brief libpvtimer host API: create, validate and service a pvtimer area.
 *
 * The area is memory a VMM maps into guest physical memory (layout in
 * pvtimer_abi.h, protocol in docs/pvtimer-abi.md). This library owns the
 * host side of the protocol only: it never starts threads and knows nothing
 * of KVM. Everything a guest wrote is read once and validated before use.
 *
 * Thread safety: one thread at a time may call the pvtimer_host_*()
 * functions on an area (the servicing thread). pvtimer_area_get_stats() and
 * the pvtimer_area_*() accessors may be called from any thread.
 * Errors are returned as negative errno values; nothing prints or aborts.
 */
#ifndef EXITLESS_PVTIMER_H
#define EXITLESS_PVTIMER_H

#include <stddef.h>
#include <stdint.h>

#include "pvtimer_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef PVTIMER_API
#define PVTIMER_API __attribute__((visibility("default")))
#endif

/** Opaque handle to one timer area. */
struct pvtimer_area;

/** Adopt @c mem as it is (an area restored with a snapshot): validate the
 * header instead of initialising it. Geometry options must then be zero. */
#define PVTIMER_AREA_ADOPT (1u << 0)

/**
 * Options of pvtimer_area_new(). Declare with PVTIMER_AREA_OPTS() so that
 * @c sz is set and every other byte, padding included, is zero.
 *
 * Growth rules (libbpf's): fields added later go at the end, and zero means
 * "not set" for each of them. The library reads a field only when the
 * caller's @c sz covers it, so an older caller (smaller @c sz) gets the
 * defaults of the fields it does not know. Every byte from the end of the
 * last field this library knows (@c vector_max) up to the caller's @c sz,
 * tail padding included, must be zero: a newer caller that set a field
 * this library does not have gets -EINVAL rather than silently losing it,
 * and a field placed in today's padding cannot be read from garbage.
 */
struct pvtimer_area_opts {
	size_t sz;                /**< sizeof(struct pvtimer_area_opts) */
	uint32_t slot_count;      /**< 1..PVTIMER_ABI_MAX_SLOTS (0 with ADOPT) */
	uint32_t tsc_khz;         /**< guest TSC rate; 0 if unknown */
	uint64_t margin_tsc;      /**< header.margin_tsc */
	uint64_t max_horizon_tsc; /**< 0: one hour at tsc_khz, else 2^56;
				       at most 2^62 */
	uint64_t features;        /**< subset of PVTIMER_F_ALL_1_1
				       (PVTIMER_F_VECTOR_RANGE is always set) */
	void *mem;                /**< NULL: allocate a sealed memfd */
	size_t mem_size;          /**< bytes at @c mem */
	uint32_t flags;           /**< PVTIMER_AREA_* */
	uint8_t vector_min;       /**< 0: PVTIMER_VECTOR_MIN; advertised in the
				       header (must be 0 with ADOPT: the
				       adopted header's range is kept) */
	uint8_t vector_max;       /**< 0: PVTIMER_VECTOR_MAX; advertised */
	/* the last field: a new one goes here and pvtimer_area_new() learns
	 * that it is the last (the bytes after it are checked) */
};

/**
 * Declare @p name, a struct pvtimer_area_opts with @c sz set, the given
 * designated initialisers (e.g. `.slot_count = 4`) and every other byte
 * zero, padding included: a plain initialiser leaves padding unspecified,
 * so the memset comes first (libbpf's LIBBPF_OPTS; needs GNU C statement
 * expressions, as gcc and clang provide).
 */
#define PVTIMER_AREA_OPTS(name, ...)                                          \
	struct pvtimer_area_opts name = ({                                    \
		__builtin_memset(&name, 0, sizeof(struct pvtimer_area_opts)); \
		(struct pvtimer_area_opts){                                   \
			.sz = sizeof(struct pvtimer_area_opts), __VA_ARGS__   \
		};                                                            \
	})

/**
 * What the host made of one slot, read once from guest memory.
 *
 * Caller-allocated, written only by pvtimer_host_read_slot(), which writes
 * every byte (the reserved tail as zero), so a caller passes it
 * uninitialised. Growth: the size is fixed for ABI major 1 (64 bytes);
 * fields added later take bytes of @c reserved, and a value of zero in them
 * means what an older library, which leaves them zero, means: "nothing to
 * report". Callers never read or write @c reserved.
 */
struct pvtimer_slot_snapshot {
	uint64_t deadline_tsc; /**< guest TSC; meaningful when @c armed */
	uint32_t gen;          /**< arm generation the snapshot belongs to */
	uint8_t vector;        /**< validated vector; with -EINVAL the vector
				    to wake the guest on, 0 when the slot's
				    is not one the host accepts (use the
				    injector's own) */
	uint8_t armed;         /**< 1: live deadline; 0: cancelled */
	uint8_t reject;        /**< PVTIMER_REJECT_* when the read failed */
	uint8_t past;          /**< 1: deadline at or before @c now (by any
				    amount, modular): fire it at once */
	uint8_t already_fired; /**< 1: this host fired @c gen (with this very
				    deadline) already, so @c armed reads 0 */
	uint8_t wake;          /**< with -EINVAL: 1 the first time this
				    generation is rejected: inject exactly one
				    interrupt (on @c vector) */
	uint8_t recheck;       /**< 1: the generation and deadline this host
				    already acked (a fire-time re-read) */
	uint8_t reserved[45];  /**< room to grow; zero, never used by callers */
};

/** Counters of what a host saw in guest memory. Set @c sz before calling
 * pvtimer_area_get_stats(); later versions only append fields: an older
 * caller's smaller @c sz gets the counters it has, a newer caller's larger
 * one gets zero for the counters this library does not have. */
struct pvtimer_area_stats {
	size_t sz;               /**< sizeof(struct pvtimer_area_stats) */
	uint64_t slot_reads;     /**< snapshots attempted */
	uint64_t torn_reads;     /**< seqlock never settled (guest mid-write) */
	uint64_t rejected_flags; /**< generations rejected: unknown arm_flags
				  *   bits (each generation counted once) */
	uint64_t rejected_vector; /**< ...: vector outside the allowed range */
	uint64_t rejected_far;   /**< ...: deadline beyond now + max_horizon */
	uint64_t rejected_past;  /**< always 0 since 1.1: a past deadline is
				  *   fired at once, never rejected */
	uint64_t past_deadlines; /**< generations already due when first read
				  *   (fire-time re-reads not counted) */
	uint64_t stray_pending;  /**< pending bits naming no slot */
};

/**
 * Iterator over pending slots. Caller-allocated (on the stack, typically),
 * set up by pvtimer_host_pending_begin(); every field is private. Growth:
 * the size is fixed for ABI major 1 (64 bytes) and a later library may keep
 * more private state in @c reserved, which pvtimer_host_pending_begin()
 * initialises like the rest.
 */
struct pvtimer_pending_iter {
	uint64_t summary;
	uint64_t word;
	uint32_t word_index;
	uint32_t visited_words;
	uint64_t reserved[5]; /**< private, room to grow */
};

/**
 * Bytes an area with @p slot_count slots occupies (a whole number of pages).
 * Any thread.
 * @param slot_count number of slots, 1..PVTIMER_ABI_MAX_SLOTS
 * @return the size, or 0 when @p slot_count is 0 or above
 * PVTIMER_ABI_MAX_SLOTS.
 */
PVTIMER_API size_t pvtimer_area_size_for(uint32_t slot_count);

/**
 * Check that @p mem holds a well-formed area header of ABI major 1 whose
 * geometry fits in @p size bytes. Reads only the header, each field once.
 * @param mem  start of the area (guest memory: read, never trusted)
 * @param size bytes mapped at @p mem
 * @return 0, -EINVAL (malformed or too small) or -EPROTONOSUPPORT (major).
 */
PVTIMER_API int pvtimer_area_validate(const void *mem, size_t size);

/**
 * Create an area: initialise a fresh one or adopt a restored one.
 *
 * Without @c opts->mem the library creates a memfd (size sealed, so the
 * guest mapping can never be truncated under the host) and maps it; the VMM
 * maps pvtimer_area_fd() into guest physical memory. With @c opts->mem the
 * caller keeps ownership of that memory, which must be 64-byte aligned and
 * outlive the handle. The area starts inactive: guests fall back until
 * pvtimer_host_activate().
 *
 * @param opts options (required; unknown non-zero tail bytes are rejected)
 * @param out  receives the handle on success
 * @return 0, -EINVAL (bad options or, with ADOPT, a bad area), -ENOMEM, or
 * the -errno of memfd_create/ftruncate/mmap.
 */
PVTIMER_API int pvtimer_area_new(const struct pvtimer_area_opts *opts,
				 struct pvtimer_area **out);

/**
 * Destroy an area handle; unmaps and closes a library-made memfd.
 * Caller-provided memory is left untouched.
 * @param area the handle, or NULL (nothing happens)
 */
PVTIMER_API void pvtimer_area_destroy(struct pvtimer_area *area);

/**
 * The memfd backing the area, for the VMM to map into the guest.
 * @param area the handle
 * @return the file descriptor (owned by the handle: do not close it), or
 * -ENOENT when the caller supplied the memory.
 */
PVTIMER_API int pvtimer_area_fd(const struct pvtimer_area *area);

/**
 * The host mapping of the area.
 * @param area the handle
 * @return the mapping, valid until pvtimer_area_destroy().
 */
PVTIMER_API void *pvtimer_area_mem(const struct pvtimer_area *area);

/**
 * The size of the area.
 * @param area the handle
 * @return the size in bytes (a whole number of pages).
 */
PVTIMER_API size_t pvtimer_area_bytes(const struct pvtimer_area *area);

/**
 * The number of slots of the area.
 * @param area the handle
 * @return the slot count.
 */
PVTIMER_API uint32_t pvtimer_area_slot_count(const struct pvtimer_area *area);

/**
 * Copy the counters into @p stats (up to @c stats->sz bytes). Any thread.
 * @param area  the handle
 * @param stats receives the counters; its @c sz set by the caller
 * @return 0, or -EINVAL when @p stats or its @c sz is invalid.
 */
PVTIMER_API int pvtimer_area_get_stats(const struct pvtimer_area *area,
				       struct pvtimer_area_stats *stats);

/**
 * Start (or resume) servicing: bump the epoch, publish @p next_sync_tsc and
 * @p now_tsc as heartbeat, set PVTIMER_HOST_ACTIVE and mark every slot
 * pending, so a restored guest's arms are all re-read on the next pass.
 * @param area          the handle
 * @param next_sync_tsc guest TSC by which the first pass will start
 * @param now_tsc       the guest TSC now (the heartbeat)
 * @return 0.
 */
PVTIMER_API int pvtimer_host_activate(struct pvtimer_area *area,
				      uint64_t next_sync_tsc, uint64_t now_tsc);

/**
 * Stop promising: clear PVTIMER_HOST_ACTIVE and publish next sync NEVER,
 * with seq_cst stores. After it returns, the caller must make one more pending
 * pass and then fire or hand back (pvtimer_host_handback()) every generation
 * it still holds; guests arming from now on fall back.
 * @param area the handle
 * @return 0.
 */
PVTIMER_API int pvtimer_host_deactivate(struct pvtimer_area *area);

/**
 * Publish the area-wide promise: the host will start its next pending pass
 * no later than @p next_sync_tsc (guest TSC). Call it *before* the pass that
 * the previous promise covered. Ignored while inactive.
 * @param area          the handle
 * @param next_sync_tsc guest TSC by which the next pass will start (0 and
 *                      ~0 are sentinels: published a tick or two earlier)
 * @param now_tsc       the guest TSC now (the heartbeat)
 * @return 0.
 */
PVTIMER_API int pvtimer_host_publish(struct pvtimer_area *area,
				     uint64_t next_sync_tsc, uint64_t now_tsc);

/**
 * Set one slot's own promise: PVTIMER_SYNC_FOLLOW_AREA while it is serviced,
 * PVTIMER_SYNC_NEVER to withdraw it (detach). Seq_cst store.
 * @param area  the handle
 * @param slot  slot index
 * @param value PVTIMER_SYNC_FOLLOW_AREA or PVTIMER_SYNC_NEVER
 * @return 0, or -ERANGE for a slot index out of range.
 */
PVTIMER_API int pvtimer_host_set_slot_sync(struct pvtimer_area *area,
					   uint32_t slot, uint64_t value);

/**
 * Start a pending pass: atomically takes the summary word. Servicing thread.
 * @param area the handle
 * @param it   caller-allocated iterator, initialised here (every byte)
 */
PVTIMER_API void pvtimer_host_pending_begin(struct pvtimer_area *area,
					    struct pvtimer_pending_iter *it);

/**
 * Next pending slot of the pass. Each bit is taken (cleared) exactly once;
 * a pass visits each bitmap word at most once, so a guest setting bits in a
 * loop cannot make it run longer than slot_count steps. Bits naming no slot
 * are dropped and counted. A slot taken and not read must be requeued
 * (pvtimer_host_requeue()) before the pass ends.
 * @param area the handle
 * @param it   the iterator from pvtimer_host_pending_begin()
 * @param slot receives the next pending slot index
 * @return 1 with @p slot set, or 0 when the pass is complete.
 */
PVTIMER_API int pvtimer_host_pending_next(struct pvtimer_area *area,
					  struct pvtimer_pending_iter *it,
					  uint32_t *slot);

/**
 * Mark @p slot pending again from the host side (after a torn read, or
 * for a slot a pass took but did not read: a pass must never abandon a bit
 * it took).
 * @param area the handle
 * @param slot slot index
 * @return 0, or -ERANGE for a slot index out of range.
 */
PVTIMER_API int pvtimer_host_requeue(struct pvtimer_area *area, uint32_t slot);

/**
 * Take @p slot's pending bit with a sequentially consistent RMW (detach:
 * after storing the slot's promise NEVER, take the bit, then read the slot;
 * spec §5). Servicing thread only.
 * @param area the handle
 * @param slot slot index
 * @return 1 if the bit was set (it is clear now), 0 if not, -ERANGE for a
 * slot index out of range.
 */
PVTIMER_API int pvtimer_host_take_pending(struct pvtimer_area *area,
					  uint32_t slot);

/**
 * Take every pending bit of the area into @p mask, OR-ed in (1.2): the
 * batch form of pvtimer_host_pending_begin() + pvtimer_host_pending_next().
 *
 * One load of the summary word first, and an exchange only when it is
 * non-zero (a pass with nothing pending writes no guest line); then one
 * exchange per pending word the summary names. Each word is visited at most
 * once, so a guest OR-ing in a loop cannot lengthen the call; bits naming
 * no slot are dropped and counted (@c stray_pending). Every bit taken is
 * the caller's: it must read that slot or give the bit back with
 * pvtimer_host_requeue_mask() before the pass ends (a pass never abandons a
 * bit it took, spec §5). Servicing thread only.
 *
 * @param area   the handle
 * @param mask   caller's bitmap, bit (i mod 64) of @p mask[i/64] for slot i;
 *               bits already set are kept
 * @param nwords words at @p mask, at least (slot_count + 63) / 64
 * @return the number of bits newly set in @p mask (0: nothing pending), or
 * -EINVAL for a NULL @p area or @p mask or too small an @p nwords (then
 * nothing is taken).
 */
PVTIMER_API int pvtimer_host_take_pending_mask(struct pvtimer_area *area,
					       uint64_t *mask, uint32_t nwords);

/**
 * Give back every bit of @p mask (1.2): what pvtimer_host_requeue() does
 * per slot, per word. One atomic OR per non-zero word, then one OR of the
 * summary bits of those words (word before summary, spec §3.4).
 * Servicing thread only.
 *
 * @param area   the handle
 * @param mask   bitmap of the slots to mark pending again (not modified)
 * @param nwords words at @p mask, at least (slot_count + 63) / 64
 * @return 0, or -EINVAL for a NULL @p area or @p mask, too small an
 * @p nwords, or a set bit naming no slot (then nothing is written).
 */
PVTIMER_API int pvtimer_host_requeue_mask(struct pvtimer_area *area,
					  const uint64_t *mask, uint32_t nwords);

/**
 * pvtimer_host_read_slot() for @p n slots in one call (1.2): @p rcs[i] is
 * what pvtimer_host_read_slot() would return for @p slots[i] and
 * @p snaps[i] what it would write, in order (a slot named twice is read
 * twice). The next slots' guest lines are prefetched while one is read.
 * Servicing thread only.
 *
 * @param area    the handle
 * @param slots   @p n slot indices
 * @param n       number of slots (0: nothing is read)
 * @param now_tsc the guest TSC now, for every slot
 * @param snaps   @p n caller-allocated snapshots, each written whole
 * @param rcs     @p n results: 0, -EAGAIN or -EINVAL as for
 *                pvtimer_host_read_slot()
 * @return 0, or -EINVAL for bad arguments (a NULL pointer with @p n > 0, a
 * slot index out of range): then nothing is read or written.
 */
PVTIMER_API int pvtimer_host_read_slots(struct pvtimer_area *area,
					const uint32_t *slots, uint32_t n,
					uint64_t now_tsc,
					struct pvtimer_slot_snapshot *snaps,
					int *rcs);

/**
 * Read @p slot's guest line once and validate it against @p now_tsc.
 *
 * @param area    the handle
 * @param slot    slot index
 * @param now_tsc the guest TSC now (for @c past and the horizon check)
 * @param snap    caller-allocated, written whole (may be uninitialised)
 *
 * A generation this host already fired (pvtimer_host_fired()) with the
 * same deadline reads as not armed (@c already_fired), so re-reading a slot
 * (after activation, say) never fires it twice; the memory is forgotten as
 * soon as another generation is read, so a generation number that comes
 * back after 2^32 publishes is a new arm. A deadline in the past, by any
 * amount, is valid (@c past): fire it at once. A cancel of a generation
 * this host had acked sets the status word to (gen, NONE).
 *
 * @return 0 with a valid snapshot (armed or cancelled); -EAGAIN when the
 * guest was mid-write on every bounded attempt (requeue it); -EINVAL when
 * the content is invalid: @c snap->reject says why, the status word tells
 * the guest REJECTED, the host must not hold the deadline, and when
 * @c snap->wake is set it must inject one interrupt (the guest may be
 * halted on it); -ERANGE for a slot index out of range.
 */
PVTIMER_API int pvtimer_host_read_slot(struct pvtimer_area *area, uint32_t slot,
				       uint64_t now_tsc,
				       struct pvtimer_slot_snapshot *snap);

/**
 * Tell the guest the host holds generation @p gen (status SEEN).
 * @param area the handle
 * @param slot slot index
 * @param gen  the generation read by pvtimer_host_read_slot()
 * @return 0, or -ERANGE for a slot index out of range.
 */
PVTIMER_API int pvtimer_host_ack(struct pvtimer_area *area, uint32_t slot,
				 uint32_t gen);

/**
 * Record that generation @p gen was injected at @p fired_tsc (guest TSC):
 * fired_gen, fired_tsc (if offered) and status FIRED. Call it before the
 * injection so the guest's handler sees it.
 * @param area      the handle
 * @param slot      slot index
 * @param gen       the generation being fired
 * @param fired_tsc guest TSC of the injection (PVTIMER_F_FIRED_TSC)
 * @return 0, or -ERANGE for a slot index out of range.
 */
PVTIMER_API int pvtimer_host_fired(struct pvtimer_area *area, uint32_t slot,
				   uint32_t gen, uint64_t fired_tsc);

/**
 * Give generation @p gen back to the guest (status HANDBACK); the caller then
 * injects the slot's vector once so a halted guest re-arms in hardware.
 * @param area the handle
 * @param slot slot index
 * @param gen  the generation handed back
 * @return 0, or -ERANGE for a slot index out of range.
 */
PVTIMER_API int pvtimer_host_handback(struct pvtimer_area *area, uint32_t slot,
				      uint32_t gen);

/**
 * Guest/host TSC relation of one vCPU, as KVM defines it:
 * guest = ((host * mult) >> shift) + offset, with 128-bit intermediate.
 * Identity is mult = 1, shift = 0, offset = 0.
 *
 * Caller-allocated. Fill it with pvtimer_tsc_map_init(), or by hand with a
 * designated initialiser that leaves every other member zero. Growth: the
 * size is fixed for ABI major 1 (48 bytes); @c reserved and
 * @c reserved_tail must be zero, and a later version gives meaning only to
 * non-zero values there, so a map with them zero converts as it does today.
 */
struct pvtimer_tsc_map {
	uint64_t mult;
	uint32_t shift;
	uint32_t reserved;          /**< zero */
	int64_t offset;
	uint64_t reserved_tail[3];  /**< zero: room to grow */
};

/**
 * Build a map from KVM's view of a vCPU: the host and guest TSC rates (kHz,
 * e.g. /proc and KVM_GET_TSC_KHZ) and the TSC offset (KVM_VCPU_TSC_OFFSET).
 * @param map       caller-allocated, written whole (reserved bytes zero)
 * @param host_khz  host TSC rate in kHz
 * @param guest_khz guest TSC rate in kHz
 * @param offset    KVM's TSC offset of the vCPU
 * @return 0, or -EINVAL for a NULL @p map or a zero rate.
 */
PVTIMER_API int pvtimer_tsc_map_init(struct pvtimer_tsc_map *map,
				     uint32_t host_khz, uint32_t guest_khz,
				     int64_t offset);

/**
 * Convert a host TSC value to the vCPU's guest TSC.
 * @param map      the vCPU's map
 * @param host_tsc a host TSC value
 * @return the guest TSC at host TSC @p host_tsc (modular, like the
 * hardware).
 */
PVTIMER_API uint64_t pvtimer_tsc_to_guest(const struct pvtimer_tsc_map *map,
					  uint64_t host_tsc);

/**
 * Convert a guest TSC value (a deadline, typically) to the host TSC.
 * @param map       the vCPU's map
 * @param guest_tsc a guest TSC value
 * @return the host TSC at guest TSC @p guest_tsc, in modular arithmetic
 * like the hardware (the guest TSC may wrap past 2^64; nothing saturates),
 * rounded up so a converted deadline is never early.
 */
PVTIMER_API uint64_t pvtimer_tsc_to_host(const struct pvtimer_tsc_map *map,
					 uint64_t guest_tsc);

#ifdef __cplusplus
}
#endif

#endif /* EXITLESS_PVTIMER_H */
