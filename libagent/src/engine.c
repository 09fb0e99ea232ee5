/* SPDX-License-Identifier: MIT */
/* The agent thread: publish a promise when the standing one no longer
 * covers the next pass, take the pending slots, fire what is due, then
 * spin or sleep; between two passes, run a posted command. Every promise
 * is the time by which the next pass will have started (promise.h gives
 * the rule under which one may stand for several passes).
 *
 * Paced passes (issue 10): a turn of the loop runs a pending pass only
 * when it must: when the standing promise no longer covers the next turn
 * (it republishes: the pass keeps the promise the previous one made),
 * before a sleep, after a command, while the read budget left changed
 * slots, or when a parking ended. Every other turn touches no guest line
 * but those of due slots (the fire-time re-read and the FIRED write): it
 * spins on the TSC, the heap and the mailbox, so a guest re-arming
 * between two passes finds every line it writes still in its own cache.
 * Exact because spec §5 asks only that pass k+1 begin by T_k, the value
 * standing at pass k's first summary access: a pass that republishes
 * stores T_k = now + 2b, the next pass runs at the first turn starting
 * after T_k - b, and turns start at most b apart (b bounds every turn,
 * with or without a pass), so it begins by T_k. */
#define _GNU_SOURCE
#include <poll.h>
#include <sys/prctl.h>
#include <time.h>

#include "internal.h"

/* The one writer of header next sync and heartbeat while running. */
static void publish(struct pvagent *a, uint64_t promise, uint64_t now)
{
	for (uint32_t k = 0; k < a->nareas; k++)
		pvtimer_host_publish(a->areas[k].pa,
				     agent_to_guest(&a->areas[k], promise),
				     agent_to_guest(&a->areas[k], now));
	a->pr.standing = promise;
	AGENT_ADD(a, publishes, 1);
}

/* Every turn counts in the spin bound, with a pass or not: its length
 * bounds the gap to the next turn either way. (Windows counted in passes
 * alone would let one preempted turn, which widens b and so spaces passes
 * b apart, keep b wide for 1024 b.) */
static void note_iter(struct pvagent *a, uint64_t t)
{
	a->diag.turns++;
	if (t > a->diag.turn_max_tsc)
		a->diag.turn_max_tsc = t;
	if (agent_promise_note_iter(&a->pr, t))
		AGENT_SET(a, iter_bound_ns,
			  agent_tsc_to_ns(&a->clk, agent_promise_iter_bound(&a->pr)));
}

static void sleep_until(struct pvagent *a, uint64_t wake)
{
	uint64_t t = agent_tsc(), ns;
	struct timespec ts;
	struct pollfd pfd = { .fd = agent_mailbox_fd(&a->mb), .events = POLLIN };

	/* preempted past the wake-up already: never sleep a wrapped time */
	if (t >= wake)
		return;
	ns = agent_tsc_to_ns(&a->clk, wake - t);
	ts.tv_sec = (time_t)(ns / 1000000000ull);
	ts.tv_nsec = (long)(ns % 1000000000ull);
	AGENT_ADD(a, sleeps, 1);
	for (uint32_t k = 0; k < a->nareas; k++)
		a->areas[k].reads_awake = 0;
	if (ppoll(&pfd, 1, &ts, NULL) != 0) {
		agent_mailbox_drain(&a->mb); /* a command: not a timed wake-up */
		return;
	}
	t = agent_tsc();
	agent_promise_note_wake(&a->pr, t > wake ? t - wake : 0);
	AGENT_SET(a, wake_overshoot_max_ns, a->pr.wake_over_max_ns);
	AGENT_SET(a, wake_bound_ns,
		  agent_tsc_to_ns(&a->clk, agent_promise_wake_bound(&a->pr)));
}

/* When to wake if sleeping now is allowed, or 0 to spin. Bits left by
 * the read budget mean another pass now; a parked slot's bits only a wake
 * at the end of its parking (no spin before it: it needs no precision). */
static uint64_t wake_time(struct pvagent *a, uint64_t now)
{
	struct agent_slot *top = agent_heap_top(&a->heap);
	uint64_t wake = now + a->max_sleep_tsc;

	if (a->opts.mode != PVAGENT_MODE_ADAPTIVE || a->todo_left)
		return 0;
	if (a->parked_min) {
		if (a->parked_min <= now)
			return 0;
		if (a->parked_min < wake)
			wake = a->parked_min;
	}
	if (top) {
		if (top->deadline_host <= now + a->spin_thr_tsc)
			return 0;
		if (top->deadline_host - a->spin_thr_tsc < wake)
			wake = top->deadline_host - a->spin_thr_tsc;
	}
	return wake;
}

/* Whether this turn runs a pending pass (the file's comment): @promise,
 * the value it just published (0: none), @wake, its sleep (0: it spins). */
static bool pass_needed(const struct pvagent *a, uint64_t promise,
			uint64_t wake, uint64_t now)
{
	return promise || wake || a->pass_owed || a->todo_left ||
	       a->pass_every_turn || (a->parked_min && a->parked_min <= now);
}

static void iterate(struct pvagent *a)
{
	uint64_t now = agent_tsc(), wake, end, promise, limit;
	uint64_t reads = a->st.slot_reads;
	bool passed;

	wake = wake_time(a, now);
	promise = agent_promise_next(&a->pr, now, wake);
	if (promise)
		publish(a, promise, now);
	passed = pass_needed(a, promise, wake, now);
	if (passed)
		agent_pending_pass(a, false);
	agent_fire_due(a);
	end = agent_tsc();
	note_iter(a, end - now);
	if (a->st.slot_reads != reads)
		a->diag.busy_tsc += end - now;
	if (!wake) {
		__builtin_ia32_pause();
		return;
	}
	/* the pass may have brought a nearer deadline: wake earlier, which
	 * keeps the promise; and never later than the standing promise
	 * allows (the next pass starts up to the wake bound after it) */
	now = wake_time(a, end);
	if (!now)
		return;
	if (now < wake)
		wake = now;
	limit = agent_promise_sleep_limit(&a->pr,
					  agent_promise_wake_bound(&a->pr));
	if (wake > limit)
		wake = limit;
	if (wake > end)
		sleep_until(a, wake);
}

static void take_cmd(struct pvagent *a)
{
	struct agent_cmd c;

	if (agent_mailbox_fetch(&a->mb, &c)) {
		agent_mailbox_reply(&a->mb, agent_control_exec(a, &c));
		/* served promptly: a bind's requeued bit, a resume's marks
		 * and what expired meanwhile are read on the next turn */
		a->pass_owed = true;
	}
}

void *agent_engine_main(void *arg)
{
	struct pvagent *a = arg;
	struct timespec ts;

	/* the default 50 us slack would be added to every sleep */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	agent_control_activate(a);
	while (!a->quit) {
		if (agent_mailbox_pending(&a->mb)) {
			take_cmd(a);
			continue;
		}
		if (a->paused) {
			struct pollfd pfd = { .fd = agent_mailbox_fd(&a->mb),
					      .events = POLLIN };

			if (poll(&pfd, 1, -1) > 0)
				agent_mailbox_drain(&a->mb);
			continue;
		}
		iterate(a);
	}
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
		__atomic_fetch_add(&a->cpu_acc_ns,
				   (uint64_t)ts.tv_sec * 1000000000ull +
					   (uint64_t)ts.tv_nsec,
				   __ATOMIC_RELAXED);
	return NULL;
}
