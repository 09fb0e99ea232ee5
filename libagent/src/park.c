/* SPDX-License-Identifier: MIT */
/* Parking: what a misbehaving slot costs the agent. A slot that reads
 * torn, rejected or already due on STRIKES reads in a row is parked: a
 * temporary detach.
 *
 * - Park: its promise is withdrawn (slot sync NEVER, seq_cst) and one read
 *   is owed: a guest that armed before it saw NEVER relies on the area
 *   promise, and the next pass's exchange (ordered after the store) finds
 *   its bit, which is read like any other. Every other bit of a parked
 *   slot is consumed unread (counted): its guest sees NEVER and uses its
 *   hardware timer. What the slot holds is still fired at its deadline.
 * - Unpark, at backoff_until: the promise is given back (FOLLOW) and the
 *   slot is read once in that pass. A quiet guest never writes again, so
 *   waiting for a good read could withdraw it for ever; instead each
 *   parking doubles (BACKOFF_BASE_NS up to BACKOFF_MAX_NS) until a good
 *   read (a valid future arm, or a cancel) forgets the history.
 *
 * So a slot that never settles or re-arms in the past costs about two
 * reads and one fire per BACKOFF_MAX_NS, and an adaptive agent sleeps
 * until the earliest unpark instead of spinning. */
#include "internal.h"

#define STRIKES 2u
#define BACKOFF_BASE_NS 10000ull
#define BACKOFF_MAX_NS 10000000ull

void agent_park_init(struct pvagent *a)
{
	a->backoff_base_tsc = agent_ns_to_tsc(&a->clk, BACKOFF_BASE_NS);
	a->backoff_max_tsc = agent_ns_to_tsc(&a->clk, BACKOFF_MAX_NS);
}

static void park_remove(struct pvagent *a, struct agent_slot *s)
{
	uint32_t i = s->parked_idx;
	struct agent_slot *last;

	if (i == AGENT_PARK_NONE)
		return;
	s->parked_idx = AGENT_PARK_NONE;
	last = a->parked[--a->nparked];
	if (!a->nparked)
		a->parked_min = 0; /* or an adaptive agent would spin on it */
	if (last != s) {
		a->parked[i] = last;
		last->parked_idx = i;
	}
}

static void promise_back(struct agent_area *ar, struct agent_slot *s)
{
	if (!s->withdrawn)
		return;
	pvtimer_host_set_slot_sync(ar->pa, s->index, PVTIMER_SYNC_FOLLOW_AREA);
	s->withdrawn = 0;
}

void agent_behave(struct pvagent *a, struct agent_area *ar, struct agent_slot *s)
{
	s->strikes = 0;
	s->backoff_level = 0;
	park_remove(a, s);
	promise_back(ar, s);
}

void agent_misbehave(struct pvagent *a, struct agent_area *ar,
		     struct agent_slot *s, uint64_t now)
{
	uint64_t wait;

	if (s->strikes < UINT8_MAX)
		s->strikes++;
	/* parked already: the owed read or a fire-time re-read; the next
	 * parking will be longer */
	if (s->strikes < STRIKES || s->parked_idx != AGENT_PARK_NONE)
		return;
	wait = a->backoff_base_tsc << s->backoff_level;
	if (wait >= a->backoff_max_tsc)
		wait = a->backoff_max_tsc;
	else
		s->backoff_level++;
	s->backoff_until = now + wait;
	if (!a->parked_min || s->backoff_until < a->parked_min)
		a->parked_min = s->backoff_until;
	s->parked_idx = a->nparked;
	a->parked[a->nparked++] = s;
	if (!s->withdrawn) {
		pvtimer_host_set_slot_sync(ar->pa, s->index, PVTIMER_SYNC_NEVER);
		s->withdrawn = 1;
		AGENT_ADD(a, withdrawals, 1);
	}
	/* read after the withdrawal: its bit may already be taken (this
	 * very read), so mark it pending; the next exchange is ordered
	 * after the NEVER store */
	s->owed = 1;
	s->owed_pass = a->pass_no;
	pvtimer_host_requeue(ar->pa, s->index);
	AGENT_ADD(a, backoffs, 1);
}

/* Give back the promise of every slot whose parking ends within the park
 * slack (so that ends close together share one wake), and queue its read.
 * @all: every parked slot (stop, pause, where a full read is made). */
void agent_unpark_due(struct pvagent *a, bool all)
{
	uint64_t edge = agent_tsc() + a->park_slack_tsc, next = 0;

	if (!a->nparked || (!all && a->parked_min > edge))
		return;
	for (uint32_t i = 0; i < a->nparked;) {
		struct agent_slot *s = a->parked[i];
		struct agent_area *ar = &a->areas[s->area];

		if (all || s->backoff_until <= edge) {
			park_remove(a, s); /* moves the last one to i */
			promise_back(ar, s);
			agent_todo_set(ar, s->index);
			continue;
		}
		if (!next || s->backoff_until < next)
			next = s->backoff_until;
		i++;
	}
	a->parked_min = next;
}

/* Forget a slot's history (bind, detach); the caller sets its promise. */
void agent_slot_reset(struct pvagent *a, struct agent_slot *s)
{
	park_remove(a, s);
	s->strikes = 0;
	s->backoff_level = 0;
	s->withdrawn = 0;
	s->owed = 0;
	s->seen_cancel = 0;
}
