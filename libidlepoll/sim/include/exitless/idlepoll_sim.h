/* SPDX-License-Identifier: MIT */
/**
 * @file idlepoll_sim.h
 * @brief Trace simulator engine of the idlepoll tools: load traces of idle
 * durations and score policies on them under the cost model.
 *
 * Tooling, not the idle path: this is libidlepoll-sim, a static library the
 * idlepoll-sim tool, the tests and the benchmarks link. It is not part of
 * libexitless-idlepoll (the library a guest or VMM links), its header is not
 * installed and its symbols are in no ABI, so it may change freely. It uses
 * only the public API of <exitless/idlepoll.h>.
 *
 * A trace file holds one idle duration in ns per line (decimal digits,
 * surrounding blanks allowed); lines whose first non-blank character is '#'
 * and blank lines are ignored.
 *
 * Thread safety: functions touch only their arguments; a trace may be read
 * by several threads at once.
 */
#ifndef EXITLESS_IDLEPOLL_SIM_H
#define EXITLESS_IDLEPOLL_SIM_H

#include <stddef.h>
#include <stdint.h>

#include <exitless/idlepoll.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded trace. Only idlepoll_trace_load() allocates one (never declare
 * or embed it: later versions may append fields); the caller owns it and
 * frees it with idlepoll_trace_free(). */
struct idlepoll_trace {
	size_t n;          /**< number of idle periods */
	uint64_t *idle_ns; /**< their durations, in file order */
};

/**
 * Accumulated score of one policy on one trace. Set @c sz and zero the rest
 * before the first idlepoll_score_add(); later versions only append fields.
 * A caller built against an older, shorter struct (smaller @c sz) keeps
 * working: the functions read and write only the fields inside its @c sz.
 */
struct idlepoll_score {
	size_t sz;           /**< sizeof(struct idlepoll_score) */
	uint64_t events;     /**< idle periods scored */
	uint64_t halts;      /**< periods that outlasted their window */
	uint64_t cost_ns;    /**< sum of cost under the model */
	uint64_t opt_ns;     /**< sum of min(d, H): the offline optimum */
	uint64_t poll_ns;    /**< sum of min(d, w): CPU burned polling */
	uint64_t idle_ns;    /**< sum of d */
	uint64_t latency_ns; /**< sum of added wake-up latency (H per halt) */
};

/** Derived figures of a score (plain doubles for printing). */
struct idlepoll_score_summary {
	double cost_ratio;       /**< cost_ns / opt_ns */
	double poll_cpu;         /**< poll_ns / idle_ns */
	double halt_rate;        /**< halts / events */
	double added_latency_ns; /**< latency_ns / events */
};

/**
 * Load a trace file.
 * @param path   file to read
 * @param out    receives the trace on success (free with idlepoll_trace_free)
 * @param err    if not NULL, receives "PATH:LINE: reason" on a parse error,
 *               or "PATH: reason" on an I/O error
 * @param errlen bytes at @p err
 * @return 0; -EINVAL on a malformed line or an empty trace; -ENOMEM; or the
 *         -errno of opening/reading the file.
 */
int idlepoll_trace_load(const char *path,
			struct idlepoll_trace **out, char *err,
			size_t errlen);

/** Free a trace from idlepoll_trace_load(). NULL-safe. */
void idlepoll_trace_free(struct idlepoll_trace *t);

/**
 * Score one period: window @p window_ns against duration @p idle_ns with
 * halt cost @p halt_cost_ns.
 * @return 0; -EINVAL if @p s is NULL or its @c sz is below sizeof(size_t).
 */
int idlepoll_score_add(struct idlepoll_score *s, uint64_t idle_ns,
		       uint64_t window_ns, uint64_t halt_cost_ns);

/**
 * Derive ratios from a score. Ratios of empty sums are 0.
 * @return 0; -EINVAL on NULL arguments or an @c sz below sizeof(size_t).
 */
int idlepoll_score_summarize(const struct idlepoll_score *s,
			     struct idlepoll_score_summary *out);

/**
 * Run a policy state over @p n durations, select then reflect per period
 * (no timer hints), and accumulate into @p s with the state's
 * "halt_cost_ns" as H. The state learns as it goes; it is not reset.
 * @return 0; -EINVAL on bad arguments.
 */
int idlepoll_sim_run(struct idlepoll_cpu *c,
		     const uint64_t *idle_ns, size_t n,
		     struct idlepoll_score *s);

/**
 * Score the offline optimum (window d when d <= H, else 0): cost ratio 1.
 * @return 0; -EINVAL on bad arguments.
 */
int idlepoll_sim_oracle(uint64_t halt_cost_ns,
			const uint64_t *idle_ns, size_t n,
			struct idlepoll_score *s);

/**
 * Score the best single window in hindsight: the window (0 or one of the
 * durations) with the lowest total cost on the whole trace.
 * @param window_ns if not NULL, receives that window
 * @return 0; -EINVAL on bad arguments; -ENOMEM.
 */
int idlepoll_sim_best_fixed(uint64_t halt_cost_ns,
			    const uint64_t *idle_ns, size_t n,
			    struct idlepoll_score *s,
			    uint64_t *window_ns);

#ifdef __cplusplus
}
#endif

#endif
