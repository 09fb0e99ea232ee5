/* SPDX-License-Identifier: MIT */
/**
 * @file agent.h
 * @brief libagent: a dedicated-CPU timer agent servicing pvtimer areas.
 *
 * One agent owns one thread. The thread watches every bound slot of the
 * attached pvtimer areas (see pvtimer.h), keeps the armed deadlines in a
 * min-heap and injects each slot's interrupt through that slot's injector at
 * its deadline, publishing in each area header, before every pass, the time
 * by which it will have looked again (the promise guests check with the
 * fallback rule).
 *
 * ABI 1.1 behaviour: a deadline already past when read (or found long past
 * after the agent thread was held up) fires at once; a rejected generation
 * gets exactly one wake injection (see pvagent_inject_fn for its vector). One
 * area costs a pass at most 16 slot reads, a slot at most one read and one
 * fire; bits a pass took but did not read are marked pending again; a slot
 * that reads torn, rejected or already due on consecutive reads is parked
 * (its promise withdrawn, then its bits left unread for 10 us doubling up to
 * 10 ms), so it costs a bounded share of the agent thread (docs/agent.md).
 *
 * Thread safety: every agent_*() function may be called from any thread;
 * they serialise on the handle. None may be called from an injector
 * callback (they would wait for the agent thread that runs the callback),
 * and none after or concurrently with pvagent_destroy().
 * Errors are negative errno values; the library never prints or aborts.
 */
#ifndef EXITLESS_AGENT_H
#define EXITLESS_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h> /* memset in PVAGENT_OPTS */

#include <exitless/pvtimer.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef PVAGENT_API
#define PVAGENT_API __attribute__((visibility("default")))
#endif

/** Opaque agent handle. */
struct pvagent;

/** pvagent_opts.cpu_policy: do not pin the agent thread. */
#define PVAGENT_CPU_ANY 0u
/** pvagent_opts.cpu_policy: pin to pvagent_opts.cpu. */
#define PVAGENT_CPU_FIXED 1u
/** pvagent_opts.cpu_policy: pick a CPU near the vCPUs but not one of theirs
 * (pvagent_pick_cpu()). */
#define PVAGENT_CPU_PICK 2u

/** Spin on the TSC between passes: lowest lateness, one busy core. */
#define PVAGENT_MODE_DEDICATED 0u
/** Spin only near a deadline; sleep otherwise (and promise less). */
#define PVAGENT_MODE_ADAPTIVE 1u

/** pvagent_opts.uring_min_batch: never batch with io_uring. */
#define PVAGENT_URING_NEVER UINT32_MAX

/**
 * Options of pvagent_new(). Declare with PVAGENT_OPTS() so that @c sz is set;
 * zero means "default" for every field, fields only get appended.
 */
struct pvagent_opts {
	size_t sz;                  /**< sizeof(struct pvagent_opts) */
	uint32_t cpu_policy;        /**< PVAGENT_CPU_* */
	int cpu;                    /**< PVAGENT_CPU_FIXED: the CPU */
	uint32_t mode;              /**< PVAGENT_MODE_* */
	const int *vcpu_cpus;       /**< host CPUs of the vCPUs (for PICK);
				     *   copied by pvagent_new() */
	uint32_t vcpu_cpu_count;    /**< entries at @c vcpu_cpus */
	uint32_t uring_min_batch;   /**< irqfd shots due together from which
				     *   io_uring is used; 0: measured by
				     *   pvagent_new() (smallest batch where one
				     *   submission beats write(), else never);
				     *   PVAGENT_URING_NEVER: never */
	uint64_t spin_threshold_ns; /**< adaptive: spin when the next deadline
				     *   is this near; 0: 200 us; at most
				     *   500 ms */
	uint64_t max_sleep_ns;      /**< adaptive: longest sleep; 0: 1 ms;
				     *   at most 500 ms (a promise is at most
				     *   a second ahead) */
	uint64_t spin_sync_ns;      /**< lower bound of the promise made while
				     *   spinning; 0: 20 us; at most 500 ms */
	uint64_t wake_bound_ns;     /**< lower bound of the promise added to a
				     *   sleep for wake-up overshoot; 0: 150 us;
				     *   at most 500 ms (so is the measured
				     *   bound) */
	int sched_policy;           /**< SCHED_OTHER (0), SCHED_FIFO, SCHED_RR:
				     *   applied if permitted */
	int sched_priority;         /**< for FIFO/RR: within the policy's
				     *   sched_get_priority_min..max */
	uint32_t tsc_khz;           /**< the host TSC rate (e.g. the guest's
				     *   KVM_GET_TSC_KHZ when guest and host
				     *   rates agree, or /proc's tsc_khz);
				     *   0: measured once per process (about
				     *   10 ms of busy-waiting); at most
				     *   100 GHz */
};

/**
 * Declare a struct pvagent_opts named @p name, zeroed whole (padding
 * included, libbpf's rule: a later version may give padding a meaning),
 * with @c sz set and the given fields.
 */
#define PVAGENT_OPTS(name, ...)                                                 \
	struct pvagent_opts name = ({                                           \
		memset(&name, 0, sizeof(struct pvagent_opts));                  \
		(struct pvagent_opts){ .sz = sizeof(struct pvagent_opts),         \
				     __VA_ARGS__ };                           \
	})

/** Injector kinds. */
#define PVAGENT_INJ_IRQFD 1u    /**< write 1 to an eventfd (a KVM irqfd) */
#define PVAGENT_INJ_MSI 2u      /**< KVM_SIGNAL_MSI on a VM fd */
#define PVAGENT_INJ_CALLBACK 3u /**< call a function (embedders, tests) */

/**
 * Callback injector. Runs on the agent thread; must not block or call
 * agent_*(). @p vector is the validated vector the guest asked for, or 0
 * for the one wake of a rejected generation whose vector the host does not
 * accept: inject the slot's own wake vector then (one the VMM knows its
 * guest accepts, as an irqfd's route does).
 * @return 0 or a negative errno (counted as an injection error).
 */
typedef int (*pvagent_inject_fn)(void *ctx, uint32_t area_id, uint32_t slot,
			       uint8_t vector);

/** How one slot's interrupt reaches its vCPU. The fds stay owned by the
 * caller and must stay open while bound. An irqfd always delivers its
 * route's vector (fires and reject wakes alike); an irqfd opened
 * O_NONBLOCK may share an io_uring submission with others, a blocking one
 * is written with write(). */
struct pvagent_injector {
	uint32_t kind;       /**< PVAGENT_INJ_* */
	int fd;              /**< IRQFD: the eventfd; MSI: the VM fd */
	uint64_t msi_address; /**< MSI: e.g. 0xfee00000 | apic_id << 12 */
	uint32_t msi_data;   /**< MSI: bits 7..0 are replaced by the slot's
			      *   vector unless @c msi_fixed_vector; a reject
			      *   wake with vector 0 sends msi_data as is
			      *   (its low byte is the wake vector) */
	uint32_t msi_fixed_vector; /**< MSI: 1 = send msi_data as is */
	pvagent_inject_fn fn;  /**< CALLBACK */
	void *ctx;           /**< CALLBACK: passed to @c fn */
	uint64_t reserved[4]; /**< zero: room for later fields (a version that
			       *   gives them a meaning treats zero as
			       *   "unset"); non-zero is -EINVAL */
};

/** Log2 lateness buckets: bucket b counts lateness in [2^b, 2^(b+1)) ns
 * (bucket 0 also holds 0 and 1 ns). */
#define PVAGENT_LAT_BUCKETS 40

/** Counters of one agent. Set @c sz before pvagent_get_stats(). */
struct pvagent_stats {
	size_t sz;               /**< sizeof(struct pvagent_stats) */
	uint64_t fires;          /**< generations fired (at their deadline,
				  *   or at once when read already due) */
	uint64_t injections;     /**< injector calls (fires and handbacks) */
	uint64_t inject_errors;  /**< injector calls that failed */
	uint64_t batches;        /**< io_uring submissions */
	uint64_t batched;        /**< injections sent in those submissions */
	uint64_t scans;          /**< pending passes */
	uint64_t slot_reads;     /**< slot snapshots taken */
	uint64_t handbacks;      /**< generations handed back (stop, pause,
				  *   detach) */
	uint64_t cancel_races;   /**< due but re-armed or cancelled meanwhile */
	uint64_t refires_refused; /**< reads of a generation already fired
				  *   (same deadline): nothing held */
	uint64_t unbound_pending; /**< pending bits of slots with no injector */
	uint64_t promises_late;  /**< passes that began after the published
				  *   next sync (the host broke a promise) */
	uint64_t sleeps;         /**< adaptive sleeps */
	uint64_t wake_overshoot_max_ns; /**< worst observed wake-up overshoot */
	uint64_t wake_bound_ns;  /**< the overshoot bound now promised */
	uint64_t iter_bound_ns;  /**< the spin-pass bound now promised */
	uint64_t rejected_flags; /**< guest inputs rejected, per kind (sums */
	uint64_t rejected_vector; /**< of the attached areas' counters) */
	uint64_t rejected_far;
	uint64_t rejected_past;  /**< always 0 since ABI 1.1 (past fires) */
	uint64_t torn_reads;     /**< reads whose seqlock never settled */
	uint64_t stray_pending;  /**< pending bits naming no slot */
	uint64_t past_arms;      /**< generations already due when first
				  *   read: once per generation, never the
				  *   fire-time re-reads */
	uint64_t cpu_ns;         /**< CPU time of the agent thread(s) */
	uint64_t run_ns;         /**< wall time the agent thread ran */
	uint64_t late_hist[PVAGENT_LAT_BUCKETS]; /**< fire lateness, log2 ns,
				  *   from max(deadline, first read of the
				  *   arm): a guest arming in the past cannot
				  *   inflate it */
	int32_t cpu;             /**< CPU the thread is pinned to, or -1 */
	uint32_t sched_applied;  /**< 1: the requested policy was applied */
	uint32_t uring_min_batch; /**< batch size from which io_uring is used
				   *   (PVAGENT_URING_NEVER: not used, or the
				   *   ring failed and was retired) */
	uint32_t reserved0;      /**< padding; 0 */
	/* appended in 1.1 (present when sz covers them) */
	uint64_t fire_rereads;   /**< slot re-reads at fire time (the cancel
				  *   race check); also counted in slot_reads */
	uint64_t backoffs;       /**< parkings of a misbehaving slot (torn,
				  *   rejected, already due or unchanged on
				  *   consecutive reads); each doubling counts */
	uint64_t withdrawals;    /**< slot promises withdrawn for misbehaving
				  *   (slot sync NEVER until a good read) */
	uint64_t budget_stops;   /**< area passes cut short by the per-area
				  *   read budget (the rest waits a pass) */
	uint64_t reject_wakes;   /**< wake shots for rejected generations
				  *   (one per rejected generation) */
	uint64_t parked_pending; /**< pending bits of parked slots, taken
				  *   and not read (their promise is
				  *   withdrawn) */
	/* appended in 1.2 (present when sz covers it) */
	uint64_t publishes;      /**< header next sync (and heartbeat) writes:
				  *   one per promise published, in each
				  *   area; a promise left standing because
				  *   it still covers the next pass is not
				  *   written again (spec §5) */
};

/**
 * Create a stopped agent.
 * @param opts options (NULL for defaults); unknown non-zero tail -EINVAL
 * @param out  receives the handle
 * Without @c uring_min_batch it times eventfd writes against io_uring
 * submissions (about a millisecond).
 * @return 0, -EINVAL (bad options), -ENODEV (PICK found no free CPU),
 * -ERANGE (FIXED CPU not allowed),
 * -ENOMEM, or the -errno of eventfd().
 */
PVAGENT_API int pvagent_new(const struct pvagent_opts *opts, struct pvagent **out);

/**
 * Stop the agent if running (handing back whatever it holds, see
 * pvagent_stop()), join its thread and free it. Attached areas are not
 * destroyed. NULL-safe.
 * @param agent the agent, or NULL
 */
PVAGENT_API void pvagent_destroy(struct pvagent *agent);

/**
 * Attach a pvtimer area. The agent does not own it: it must outlive the
 * agent or be detached from it by pvagent_destroy(). Every slot starts
 * unbound (its next sync NEVER, so its guest falls back) until
 * pvagent_bind_slot(). Only while stopped.
 * @param agent   a stopped agent
 * @param area    the area to service (not owned: it must outlive the agent
 *                or its detach)
 * @param map guest/host TSC relation of the area's vCPUs (NULL: identity);
 *            copied
 * @param area_id receives the area's index for the other calls (may be NULL)
 * @return 0, -EBUSY (running or paused), -EEXIST (already attached),
 * -ENOMEM.
 */
PVAGENT_API int pvagent_attach_area(struct pvagent *agent, struct pvtimer_area *area,
				const struct pvtimer_tsc_map *map,
				uint32_t *area_id);

/**
 * Bind (or rebind) slot @p slot of area @p area_id to an injector and start
 * servicing it. Safe while running: takes effect before the next pass.
 * @param agent the agent (any state)
 * @param area_id from pvagent_attach_area()
 * @param slot slot index in that area
 * @param inj how to inject; copied (its fds stay the caller's)
 * @return 0, -ENOENT (area), -ERANGE (slot), -EINVAL (injector).
 */
PVAGENT_API int pvagent_bind_slot(struct pvagent *agent, uint32_t area_id,
			      uint32_t slot, const struct pvagent_injector *inj);

/**
 * Stop servicing one slot: publish NEVER for it (seq_cst), take its pending
 * bit (seq_cst RMW), read it, then hand back the generation it held or the
 * read found armed (status HANDBACK + one injection). Safe while running.
 * @param agent the agent (any state)
 * @param area_id from pvagent_attach_area()
 * @param slot slot index in that area
 * @return 0, -ENOENT, -ERANGE.
 */
PVAGENT_API int pvagent_detach_slot(struct pvagent *agent, uint32_t area_id,
				uint32_t slot);

/**
 * Start the agent thread: activate every area and service it.
 * @param agent the agent
 * @return 0, -EALREADY (running), -EBUSY (paused: use pvagent_resume()),
 * -ENOENT (no area attached), or the -errno of pthread_create.
 */
PVAGENT_API int pvagent_start(struct pvagent *agent);

/**
 * Stop: deactivate every area, take one more pending pass, fire what is
 * due and hand back every other held generation (HANDBACK + one
 * injection), then join the thread. Returns when guests can no longer
 * depend on the agent.
 * @param agent the agent
 * @return 0 or -EALREADY (not running).
 */
PVAGENT_API int pvagent_stop(struct pvagent *agent);

/**
 * Pause (VM snapshot, migration): as pvagent_stop() but the thread stays,
 * parked without CPU use. Publishes nothing a guest could take as a promise.
 * @param agent the agent
 * @return 0, -EALREADY (paused), -ESRCH (not running).
 */
PVAGENT_API int pvagent_pause(struct pvagent *agent);

/**
 * Resume after pvagent_pause(): re-activate every area, re-read every slot,
 * fire what expired while paused and re-publish.
 * @param agent the agent
 * @return 0, -EALREADY (not paused).
 */
PVAGENT_API int pvagent_resume(struct pvagent *agent);

/**
 * Snapshot the counters into @p stats (up to @c stats->sz bytes).
 * @param agent the agent (any thread)
 * @param stats receives the counters; set its @c sz first
 * @return 0 or -EINVAL (NULL or @c sz too small).
 */
PVAGENT_API int pvagent_get_stats(struct pvagent *agent, struct pvagent_stats *stats);

/**
 * Lateness percentile from a stats snapshot's histogram.
 * @param pct in (0, 100]
 * @param stats a snapshot from pvagent_get_stats()
 * @return the upper edge in ns of the bucket holding the percentile, 0 if
 * nothing fired.
 */
PVAGENT_API uint64_t pvagent_stats_late_pct(const struct pvagent_stats *stats,
					double pct);

/**
 * Format stats snapshots in the Prometheus text exposition format (version
 * 0.0.4): one family per field, `exitless_agent_<field>_total` for
 * counters and `exitless_agent_<field>` for gauges, and the
 * lateness histogram `exitless_agent_lateness_seconds` (cumulative log2
 * buckets and _count; no _sum, which the agent does not keep), each family
 * once with one sample per snapshot. No server and no I/O: the caller
 * writes the text where it wants it. Any thread.
 * @param stats  @p n snapshots from pvagent_get_stats() (an older, smaller
 *               @c sz: the fields it has, the others read 0)
 * @param labels @p n label sets, each put in its samples' braces verbatim,
 *               e.g. `vm="web1",agent="0"`; NULL (or a NULL entry, or "")
 *               for none; a set must not contain '{', '}' or a newline,
 *               and sets must differ for the text to be valid
 * @param n      number of snapshots, at least 1
 * @param buf    where to write (NUL-terminated); may be NULL when @p size
 *               is 0, to learn the length
 * @param size   bytes at @p buf
 * @return the length of the whole text (excluding the NUL), as snprintf:
 * @p size or more means it was cut; -EINVAL for no or a NULL or too small
 * snapshot, a bad label set, or a NULL @p buf with a size.
 */
PVAGENT_API int pvagent_stats_format_prometheus(const struct pvagent_stats *const *stats,
					    const char *const *labels, size_t n,
					    char *buf, size_t size);

/**
 * Choose a CPU for an agent: one the process may use (libnuma's allowed
 * set when built with it, else every online CPU), on the NUMA node of
 * @p vcpu_cpus[0] if one is free there (else on any node), not one of
 * @p vcpu_cpus. Highest such CPU first. Any thread.
 * @param vcpu_cpus host CPUs the vCPU threads run on (may be NULL when @p count is 0)
 * @param count entries at @p vcpu_cpus
 * @return the CPU number, or -ENODEV when every allowed CPU is a vCPU's.
 */
PVAGENT_API int pvagent_pick_cpu(const int *vcpu_cpus, uint32_t count);

#ifdef __cplusplus
}
#endif

#endif /* EXITLESS_AGENT_H */
