/* SPDX-License-Identifier: MIT */
/* The promise arithmetic: bounds and the publish decision (promise.h gives
 * the invariant and why each step keeps it). */
#include <string.h>

#include "promise.h"

void agent_promise_init(struct agent_promise *p, const struct agent_clock *clk,
			uint64_t spin_floor_ns, uint64_t wake_floor_ns,
			uint64_t cap_ns)
{
	memset(p, 0, sizeof(*p));
	p->clk = clk;
	p->spin_floor_tsc = agent_ns_to_tsc(clk, spin_floor_ns);
	p->wake_floor_ns = wake_floor_ns;
	p->cap_ns = cap_ns;
	p->cap_tsc = agent_ns_to_tsc(clk, cap_ns);
}

uint64_t agent_promise_iter_bound(const struct agent_promise *p)
{
	uint64_t m = p->iter_max_cur > p->iter_max_prev ? p->iter_max_cur
							 : p->iter_max_prev;

	m = 2 * m > p->spin_floor_tsc ? 2 * m : p->spin_floor_tsc;
	return m < p->cap_tsc ? m : p->cap_tsc;
}

bool agent_promise_note_iter(struct agent_promise *p, uint64_t tsc)
{
	if (tsc > p->iter_max_cur)
		p->iter_max_cur = tsc;
	if (++p->iter_count < AGENT_ITER_WINDOW)
		return false;
	p->iter_max_prev = p->iter_max_cur;
	p->iter_max_cur = 0;
	p->iter_count = 0;
	return true;
}

uint64_t agent_promise_wake_bound(const struct agent_promise *p)
{
	uint64_t ns = 0;

	if (p->wake_samples < AGENT_WAKE_MIN_SAMPLES) {
		ns = 2 * p->wake_over_max_ns;
	} else {
		uint64_t need = p->wake_samples - p->wake_samples / 1000, seen = 0;

		for (uint32_t b = 0; b < PVAGENT_LAT_BUCKETS; b++) {
			seen += p->wake_hist[b];
			if (seen >= need) {
				ns = 2ull << b;
				break;
			}
		}
	}
	ns = ns > p->wake_floor_ns ? ns : p->wake_floor_ns;
	/* with the sleep (at most as long), a promise stays within the
	 * spec's one second ahead */
	ns = ns < p->cap_ns ? ns : p->cap_ns;
	return agent_ns_to_tsc(p->clk, ns);
}

void agent_promise_note_wake(struct agent_promise *p, uint64_t over_tsc)
{
	uint64_t ns = agent_tsc_to_ns(p->clk, over_tsc);

	p->wake_hist[agent_log2_bucket(ns)]++;
	/* halve the history now and then: a burst of contention long ago
	 * should not widen every promise for ever */
	if (++p->wake_samples >= AGENT_WAKE_WINDOW) {
		p->wake_samples = 0;
		for (uint32_t b = 0; b < PVAGENT_LAT_BUCKETS; b++) {
			p->wake_hist[b] /= 2;
			p->wake_samples += p->wake_hist[b];
		}
	}
	if (ns > p->wake_over_max_ns)
		p->wake_over_max_ns = ns;
}

/* Host TSC values here are the agent's own rdtsc: 64 bits of a counter
 * that does not wrap within the machine's life, so plain order is used
 * (guest TSCs, which may be offset anywhere, are converted per area). */
uint64_t agent_promise_next(const struct agent_promise *p, uint64_t now,
			    uint64_t wake)
{
	uint64_t b = agent_promise_iter_bound(p);
	uint64_t need = now + b;

	/* sleeping, the next pass starts after the sleep and its overshoot,
	 * but never before this pass ends (a long pass, a short sleep) */
	if (wake && wake + agent_promise_wake_bound(p) > need)
		need = wake + agent_promise_wake_bound(p);

	/* the standing value covers the next pass and is not wider than
	 * the slack: no write to the guests' header line */
	if (p->standing && p->standing >= need && p->standing - need <= b)
		return 0;
	/* spinning: the slack b is what lets the next passes skip; a sleep
	 * publishes once per sleep anyway, so it promises no more than it
	 * must (a wider promise only makes more guests fall back) */
	return wake ? need : need + b;
}
