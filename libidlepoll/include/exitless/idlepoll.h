/* SPDX-License-Identifier: MIT */
/**
 * @file idlepoll.h
 * @brief libidlepoll: how long should an idle vCPU poll before it halts?
 *
 * The core (everything up to the "hosted conveniences" section) is
 * freestanding: no libc, no allocation, no floating point, no implicit
 * memset/memcpy. A guest kernel embeds it with caller-owned per-CPU state of
 * idlepoll_cpu_size() bytes aligned to idlepoll_cpu_align(), and calls, on
 * the idle path:
 *
 *  - idlepoll_select(): the poll window for the idle period starting now;
 *  - idlepoll_work() (optional, since 1.2): inside the poll loop, or just
 *    before halting, the upkeep the next select would otherwise do itself;
 *  - idlepoll_reflect(): the period lasted N ns and did (not) end in the poll.
 *
 * Cost model (docs/idlepoll.md): a period of length d polled for a window w
 * costs d if d <= w, else w + H where H is the halt cost the embedder
 * calibrates (VM exit + reschedule + wake-up IPI).
 *
 * Thread safety: a struct idlepoll_cpu belongs to one CPU; calls on it must
 * not run concurrently (the idle path runs with preemption off). Different
 * states are independent. Errors are negative errno values; nothing prints
 * or aborts.
 */
#ifndef EXITLESS_IDLEPOLL_H
#define EXITLESS_IDLEPOLL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef IDLEPOLL_API
#define IDLEPOLL_API __attribute__((visibility("default")))
#endif

/* Policies. Values are stable (they may be stored in configuration). */
#define IDLEPOLL_POLICY_FIXED 1    /**< poll a constant window */
#define IDLEPOLL_POLICY_HALTPOLL 2 /**< Linux guest haltpoll governor rule */
#define IDLEPOLL_POLICY_KVM 3      /**< KVM host halt-poll rule */
#define IDLEPOLL_POLICY_SMART 4    /**< learned, cost-minimising window */
#define IDLEPOLL_POLICY_MAX 4

/** No next-timer hint for idlepoll_select(). */
#define IDLEPOLL_NO_TIMER 0

/** Default halt cost when the options leave it zero: 20 µs. */
#define IDLEPOLL_DEFAULT_HALT_COST_NS 20000u

/** Per-CPU state. Opaque: allocate idlepoll_cpu_size() bytes. */
struct idlepoll_cpu;

/**
 * Options of idlepoll_cpu_init() and idlepoll_new(). Declare with
 * IDLEPOLL_OPTS() so that @c sz is set and every other byte is zero.
 *
 * Growth rules (libbpf's): fields added later go at the end, zero meaning
 * "not set". The library reads a field only when the caller's @c sz covers
 * it (an older caller with a smaller @c sz gets the defaults of the fields
 * it does not know), and every byte from the end of the last field it
 * knows (@c halt_cost_ns) up to @c sz, padding included, must be zero.
 */
struct idlepoll_opts {
	size_t sz;             /**< sizeof(struct idlepoll_opts) */
	uint32_t policy;       /**< IDLEPOLL_POLICY_*; 0: smart */
	uint32_t flags;        /**< reserved, must be 0 */
	uint64_t halt_cost_ns; /**< H; 0: IDLEPOLL_DEFAULT_HALT_COST_NS */
	/* the last field: a new one goes here, and core.c learns it is last */
};

/**
 * Declare @p name, a struct idlepoll_opts with @c sz set, the given
 * designated initialisers and every other byte zero, padding included
 * (libbpf's LIBBPF_OPTS: memset first, in a GNU C statement expression; a
 * guest kernel provides memset as it must for any struct copy).
 */
#define IDLEPOLL_OPTS(name, ...)                                              \
	struct idlepoll_opts name = ({                                        \
		__builtin_memset(&name, 0, sizeof(struct idlepoll_opts));     \
		(struct idlepoll_opts){                                       \
			.sz = sizeof(struct idlepoll_opts), __VA_ARGS__       \
		};                                                            \
	})

/**
 * Bytes of per-CPU state the caller must provide. Freestanding.
 * @return sizeof the state; constant for a given library build.
 */
IDLEPOLL_API size_t idlepoll_cpu_size(void);

/**
 * Alignment the per-CPU state needs. Freestanding.
 * @return a power of two.
 */
IDLEPOLL_API size_t idlepoll_cpu_align(void);

/**
 * Initialise caller-owned memory as the state of one CPU. The library keeps
 * no reference to @p opts; the caller keeps ownership of @p mem and frees it
 * (no destroy call needed). Freestanding.
 * @param mem   idlepoll_cpu_size() bytes aligned to idlepoll_cpu_align()
 * @param bytes size of @p mem
 * @param opts  options, or NULL for the smart policy with the default H
 * @param out   receives the state (== @p mem) on success
 * @return 0; -EINVAL on a bad option, size or alignment; -ENOENT on an
 *         unknown policy.
 */
IDLEPOLL_API int idlepoll_cpu_init(void *mem, size_t bytes,
				   const struct idlepoll_opts *opts,
				   struct idlepoll_cpu **out);

/**
 * Choose the poll window for the idle period that starts at @p now_ns.
 * If a timer is known to fire at @p next_timer_ns, the window never extends
 * past it. Freestanding, no allocation; O(1) when idlepoll_work() ran
 * since the last idlepoll_reflect(), else O(buckets) at worst (it does the
 * pending upkeep itself).
 * @param c             the CPU's state
 * @param now_ns        current time, any monotonic ns clock
 * @param next_timer_ns time of the next known timer on the same clock, or
 *                      IDLEPOLL_NO_TIMER
 * @return the window in ns; 0 means halt at once. Also 0 (and nothing
 *         else happens) for a NULL @p c or memory idlepoll_cpu_init() has
 *         not initialised: its policy slot is unset.
 */
IDLEPOLL_API uint64_t idlepoll_select(struct idlepoll_cpu *c, uint64_t now_ns,
				      uint64_t next_timer_ns);

/**
 * Report how the idle period chosen by the last idlepoll_select() ended.
 * Freestanding.
 * @param c       the CPU's state
 * @param idle_ns length of the idle period (poll + halt), in ns
 * Does nothing for a NULL @p c or memory idlepoll_cpu_init() has not
 * initialised (its policy slot is unset).
 * @param c       the CPU's state
 * @param idle_ns length of the idle period (poll + halt), in ns
 * @param polled  non-zero if the wake-up came while still polling
 */
IDLEPOLL_API void idlepoll_reflect(struct idlepoll_cpu *c, uint64_t idle_ns,
				   int polled);

/**
 * Do one bounded chunk of the upkeep the next idlepoll_select() needs, so
 * that select itself stays O(1). Call it between idlepoll_reflect() and
 * the next idlepoll_select(): in the poll loop (whose cycles are burnt
 * anyway) or just before halting, until it returns 0. Optional: what it
 * leaves undone the next select does itself, so every decision is the
 * same whether it is called, called in part or never; only where the
 * cycles go changes. For smart a chunk is at most one pass over a histogram
 * (54 buckets, a few hundred instructions); the other policies have none.
 * Freestanding; same thread rules as idlepoll_select(). Since 1.2 (symbol
 * version EXITLESS_IDLEPOLL_1.2).
 * @param c the CPU's state
 * @return 1 if it did a chunk (call again), 0 when nothing is left;
 *         -EINVAL for a NULL @p c or memory idlepoll_cpu_init() has not
 *         initialised.
 */
IDLEPOLL_API int idlepoll_work(struct idlepoll_cpu *c);

/**
 * Set a parameter of the state's policy at run time (docs/idlepoll.md lists
 * them). "halt_cost_ns" is accepted by every policy. Freestanding.
 * @param c     the CPU's state
 * @param key   parameter name (idlepoll_param_key() lists them)
 * @param value new value
 * @return 0; -ENOENT if the policy has no such key; -EINVAL if @p value is
 *         out of range (the parameter is then unchanged).
 */
IDLEPOLL_API int idlepoll_set_param(struct idlepoll_cpu *c, const char *key,
				    uint64_t value);

/**
 * Read a parameter of the state's policy. Freestanding.
 * @param c     the CPU's state
 * @param key   parameter name
 * @param value receives the value
 * @return 0 and *@p value; -ENOENT if the policy has no such key.
 */
IDLEPOLL_API int idlepoll_get_param(const struct idlepoll_cpu *c,
				    const char *key, uint64_t *value);

/**
 * Name the @p i-th parameter key of @p policy, for listing. Freestanding.
 * @param policy IDLEPOLL_POLICY_*
 * @param i      index, from 0 until NULL is returned
 * @return a static string, or NULL past the last key or for a bad policy.
 */
IDLEPOLL_API const char *idlepoll_param_key(uint32_t policy, unsigned int i);

/**
 * Name of a policy ("fixed", "haltpoll", "kvm", "smart"). Freestanding.
 * @param policy IDLEPOLL_POLICY_*
 * @return a static string, or NULL for an unknown policy.
 */
IDLEPOLL_API const char *idlepoll_policy_name(uint32_t policy);

/**
 * Look a policy up by name. Freestanding.
 * @param name a name idlepoll_policy_name() returns
 * @return IDLEPOLL_POLICY_* (> 0), or -ENOENT.
 */
IDLEPOLL_API int idlepoll_policy_from_name(const char *name);

/**
 * The policy a state was initialised with. Freestanding.
 * @param c the CPU's state
 * @return IDLEPOLL_POLICY_*; 0 for a NULL @p c or memory
 *         idlepoll_cpu_init() has not initialised.
 */
IDLEPOLL_API uint32_t idlepoll_cpu_policy(const struct idlepoll_cpu *c);

/**
 * The cost model: what an idle period of @p idle_ns costs when polled for
 * @p window_ns with halt cost @p halt_cost_ns. Freestanding, pure.
 * @param idle_ns      length of the idle period
 * @param window_ns    poll window chosen for it
 * @param halt_cost_ns H, the cost of a halt
 * @return idle_ns if idle_ns <= window_ns, else window_ns + halt_cost_ns.
 */
IDLEPOLL_API uint64_t idlepoll_cost(uint64_t idle_ns, uint64_t window_ns,
				    uint64_t halt_cost_ns);

/* ---- Hosted conveniences (need libc) --------------------------------- */

/**
 * Allocate and initialise a per-CPU state (hosted). Free it with
 * idlepoll_destroy().
 * @param opts options, or NULL for the smart policy with the default H
 * @param out  receives the state on success
 * @return 0; -ENOMEM; or the errors of idlepoll_cpu_init().
 */
IDLEPOLL_API int idlepoll_new(const struct idlepoll_opts *opts,
			      struct idlepoll_cpu **out);

/**
 * Free a state from idlepoll_new(). Not for caller-owned memory.
 * @param c the state, or NULL (nothing happens)
 */
IDLEPOLL_API void idlepoll_destroy(struct idlepoll_cpu *c);

/**
 * CLOCK_MONOTONIC in ns, the clock the hosted helpers use (hosted).
 * @return the time in ns.
 */
IDLEPOLL_API uint64_t idlepoll_now_ns(void);

/** Most buckets idlepoll_hist_window() takes (a 64-bit duration has 65 log2 classes). */
#define IDLEPOLL_HIST_MAX_BUCKETS 65

/**
 * The poll window that minimises the expected cost of idle periods, given
 * only a log2 histogram of their durations (hosted). The cost model is the
 * simulator's (idlepoll_cost()): a period of d ns costs d if d <= window,
 * else window + H. This is what a host can learn from KVM's binary stats
 * (`halt_wait_hist` and friends use this layout), with no trace.
 *
 * Layout, KVM's log2 histogram: @p counts[0] counts periods of 0 ns;
 * @p counts[i] for 0 < i < @p n - 1 counts periods in [2^(i-1), 2^i);
 * @p counts[n - 1] counts every period >= 2^(n-2) (open-ended).
 *
 * Candidates are 0 (halt at once) and the upper edge 2^i of every closed
 * bucket i (a window there catches the whole bucket). A bucket's periods
 * are costed at its midpoint, 0.75 * 2^i, when polled; the open bucket
 * is never caught. Ties go to the smaller window (less CPU).
 *
 * @param counts        @p n bucket counts (read only)
 * @param n             buckets, 2 .. IDLEPOLL_HIST_MAX_BUCKETS
 * @param halt_cost_ns  H, > 0
 * @param max_window_ns largest window to return; 0 means no limit
 * @param window_ns     receives the window (0 for an empty histogram)
 * @return 0; -EINVAL on a NULL pointer, a bad @p n or H = 0.
 * Thread safety: touches only its arguments.
 */
IDLEPOLL_API int idlepoll_hist_window(const uint64_t *counts, size_t n,
				      uint64_t halt_cost_ns,
				      uint64_t max_window_ns,
				      uint64_t *window_ns);

#ifdef __cplusplus
}
#endif

#endif
