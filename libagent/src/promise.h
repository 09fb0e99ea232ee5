/* SPDX-License-Identifier: MIT */
/* The promise arithmetic (spec §5): how long the agent may take before its
 * next pass begins, and when the standing promise must be published again.
 * Pure bookkeeping on TSC values the caller passes in: no clock read, no
 * shared memory, so that tests/agent/test_promise.c can drive it.
 *
 * The invariant the engine keeps with it (spec §5, "hysteresis"): when a
 * pass performs its summary exchange, the value standing in the header
 * (the last one stored) is at or after the start of the next pass.
 * - Spinning, the next pass starts within the spin bound b of this one's
 *   start. The engine publishes now + 2b and leaves it standing while it
 *   is at least now + b: the next pass, starting by now + b, is covered.
 *   Below that (or above now + 2b, a promise wider than it needs: after a
 *   sleep, or b shrank) it publishes again.
 * - Sleeping until w, the next pass starts by max(w + the wake bound wb,
 *   now + b) (the pass itself may outlast a short sleep). That need is
 *   published unless the standing value lies in [need, need + b]; and no
 *   sleep may end later than the standing promise minus wb
 *   (agent_promise_sleep_limit()).
 * A promise is never more than a second ahead: b, wb and a sleep are each
 * capped at half a second, and the slack added is b. */
#ifndef AGENT_PROMISE_H
#define AGENT_PROMISE_H

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "exitless/agent.h"

/* Passes per window of the spin bound. */
#define AGENT_ITER_WINDOW 1024u
/* Overshoot samples before the measured bound replaces the floor alone. */
#define AGENT_WAKE_MIN_SAMPLES 32u
/* Overshoot samples after which the history is halved. */
#define AGENT_WAKE_WINDOW 4096u

struct agent_promise {
	const struct agent_clock *clk;
	uint64_t spin_floor_tsc;  /* spin_sync_ns */
	uint64_t wake_floor_ns;   /* wake_bound_ns */
	uint64_t cap_ns;          /* AGENT_BOUND_CAP_NS */
	uint64_t cap_tsc;
	/* spin bound: the longest pass of the current and the last window */
	uint64_t iter_max_cur, iter_max_prev;
	uint32_t iter_count;
	/* wake-up overshoot: log2 ns histogram */
	uint64_t wake_hist[PVAGENT_LAT_BUCKETS];
	uint64_t wake_samples;
	uint64_t wake_over_max_ns;
	/* the value standing in the headers, host TSC; 0 = none (stopped,
	 * paused: nothing a guest may rely on) */
	uint64_t standing;
};

void agent_promise_init(struct agent_promise *p, const struct agent_clock *clk,
			uint64_t spin_floor_ns, uint64_t wake_floor_ns,
			uint64_t cap_ns);

/* The spin bound b: max(floor, 2 x the longest pass of the last two
 * windows), capped. */
uint64_t agent_promise_iter_bound(const struct agent_promise *p);
/* A pass took @tsc. @return true when a window closed (b may change). */
bool agent_promise_note_iter(struct agent_promise *p, uint64_t tsc);

/* The wake bound wb (TSC): max(floor, upper edge of the log2 bucket
 * holding p99.9 of the overshoots), or twice the worst while samples are
 * few; capped. */
uint64_t agent_promise_wake_bound(const struct agent_promise *p);
/* A timed sleep ended @over_tsc after its wake-up time. */
void agent_promise_note_wake(struct agent_promise *p, uint64_t over_tsc);

/* The value to publish before the pass starting at @now, or 0 to leave the
 * standing one (it covers the next pass). @wake: the time the agent will
 * sleep until after the pass, 0 if it spins. */
uint64_t agent_promise_next(const struct agent_promise *p, uint64_t now,
			    uint64_t wake);
/* The latest time a sleep may end so that the next pass, starting at most
 * @wb after it, still keeps the standing promise. */
static inline uint64_t agent_promise_sleep_limit(const struct agent_promise *p,
						 uint64_t wb)
{
	return p->standing > wb ? p->standing - wb : 0;
}

#endif
