/* SPDX-License-Identifier: MIT */
/* One pending pass and the fires: take each area's pending bits into the
 * agent's own to-do set, read at most AREA_READ_BUDGET slots per area (one
 * read per slot), fire what is due after every read, and back off slots
 * that misbehave. The bounds are what keep one VM from delaying another:
 *
 * - per pass an area costs at most AREA_READ_BUDGET reads (and as many
 *   fires and reject wakes); a slot at most one read and one fire;
 * - bits taken but not read stay in the to-do set (host memory), served
 *   first by later passes from a rotating start: never abandoned;
 * - a due deadline is fired, and injected, at the first fire point after
 *   it falls due (after every read), not after the whole pass; a past arm
 *   is due from the time it was read, so it never jumps ahead of a
 *   deadline that fell due before that read;
 * - a slot that reads torn, rejected or already due on consecutive reads
 *   loses its promise (slot sync NEVER: its guest uses its hardware timer)
 *   and is then parked: its bits left unread for an exponentially growing
 *   time, up to BACKOFF_MAX_NS (misbehave()). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

/* Slot reads per area per pass. A read of a line the guest is writing
 * costs ~0.2 us here, so 16 keep a pass well inside the 20 us spin
 * promise however many slots an area marks. */
#define AREA_READ_BUDGET 16u
/* Consecutive bad reads before a slot is parked. */
#define STRIKES 2u
/* First parking time, doubled per further bad read, up to the cap. */
#define BACKOFF_BASE_NS 10000ull
#define BACKOFF_MAX_NS 10000000ull

static uint64_t to_guest(const struct agent_area *ar, uint64_t host)
{
	return pvtimer_tsc_to_guest(&ar->map, host);
}

static void todo_set(struct agent_area *ar, uint32_t i)
{
	ar->todo[i / 64] |= 1ull << (i % 64);
}

static void todo_clear(struct agent_area *ar, uint32_t i)
{
	ar->todo[i / 64] &= ~(1ull << (i % 64));
}

void agent_slot_drop(struct agent *a, struct agent_slot *s)
{
	if (!s->held)
		return;
	agent_heap_remove(&a->heap, s);
	s->held = 0;
}

/* The slot behaved: forget its strikes and give its promise back. */
static void behave(struct agent_area *ar, struct agent_slot *s)
{
	s->strikes = 0;
	s->backoff_level = 0;
	s->backoff_until = 0;
	if (s->withdrawn) {
		pvtimer_host_set_slot_sync(ar->pa, s->index,
					   PVTIMER_SYNC_FOLLOW_AREA);
		s->withdrawn = 0;
	}
}

/* A bad read: torn, rejected, or an arm already due. After STRIKES in a
 * row the slot's promise is withdrawn, and nothing is parked yet: a guest
 * that armed before it saw NEVER relies on the area promise, so that arm
 * is read like any other. The next bad read parks the slot: its bits wait
 * until backoff_until, when the promise is given back (a quiet guest never
 * writes again, so waiting for a good read could last for ever) and one
 * read decides again. Each parking doubles, up to the cap. */
static void misbehave(struct agent *a, struct agent_area *ar,
		      struct agent_slot *s, uint64_t now)
{
	uint64_t wait;

	if (s->strikes < UINT8_MAX)
		s->strikes++;
	if (s->strikes < STRIKES)
		return;
	if (!s->withdrawn) {
		pvtimer_host_set_slot_sync(ar->pa, s->index, PVTIMER_SYNC_NEVER);
		s->withdrawn = 1;
		AGENT_ADD(a, withdrawals, 1);
		return;
	}
	wait = a->backoff_base_tsc << s->backoff_level;
	if (wait >= a->backoff_max_tsc)
		wait = a->backoff_max_tsc;
	else
		s->backoff_level++;
	s->backoff_until = now + wait;
	todo_set(ar, s->index); /* so that the end of the parking is seen */
	AGENT_ADD(a, backoffs, 1);
}

/* The parking is over: promise again, then read (by the caller). */
static void unpark(struct agent_area *ar, struct agent_slot *s)
{
	s->backoff_until = 0;
	if (s->withdrawn) {
		pvtimer_host_set_slot_sync(ar->pa, s->index,
					   PVTIMER_SYNC_FOLLOW_AREA);
		s->withdrawn = 0;
	}
}

/* Take over the generation in @snap (valid and armed), read at @now.
 * @return true if it is a change (not the generation already held). */
static bool hold(struct agent *a, struct agent_area *ar, struct agent_slot *s,
		 const struct pvtimer_slot_snapshot *snap, uint64_t now)
{
	uint64_t key;

	/* unchanged (a pending bit without a change, or a fire-time
	 * re-read): neither good nor bad, so another vCPU of the VM storming
	 * this slot's bit cannot get it parked */
	if (s->held && s->gen == snap->gen)
		return false;
	agent_slot_drop(a, s);
	s->gen = snap->gen;
	s->vector = snap->vector;
	s->held = 1;
	key = pvtimer_tsc_to_host(&ar->map, snap->deadline_tsc);
	/* lateness counts from when we could have known: a guest arming in
	 * the past cannot make the agent look late */
	s->due_host = key > now ? key : now;
	pvtimer_host_ack(ar->pa, s->index, snap->gen);
	if (key <= now) {
		/* due since it was read: after every deadline that fell due
		 * before this read, before those due after it */
		if (!s->past_counted || s->past_gen != snap->gen)
			AGENT_ADD(a, past_arms, 1);
		s->past_counted = 1;
		s->past_gen = snap->gen;
		key = now;
		misbehave(a, ar, s, now);
	} else {
		behave(ar, s);
	}
	agent_heap_set(&a->heap, s, key);
	return true;
}

/* Read one slot. @return true if it showed a change (anything but the
 * generation already held or already fired). */
static bool service(struct agent *a, struct agent_area *ar,
		    struct agent_slot *s)
{
	struct pvtimer_slot_snapshot snap;
	uint64_t now = agent_tsc();
	int rc = pvtimer_host_read_slot(ar->pa, s->index, to_guest(ar, now),
					&snap);

	AGENT_ADD(a, slot_reads, 1);
	if (rc == -EAGAIN) {
		/* mid-write: keep what we hold, look again in a later pass */
		todo_set(ar, s->index);
		misbehave(a, ar, s, now);
		return true;
	}
	if (rc < 0) {
		/* rejected: the library told the guest (REJECTED) */
		agent_slot_drop(a, s);
		misbehave(a, ar, s, now);
		return true;
	}
	if (!snap.armed) {
		if (snap.already_fired) {
			AGENT_ADD(a, refires_refused, 1);
			agent_slot_drop(a, s);
			return false;
		}
		agent_slot_drop(a, s);
		behave(ar, s); /* a cancel */
		return true;
	}
	return hold(a, ar, s, &snap, now);
}

static void fire(struct agent *a, struct agent_area *ar, struct agent_slot *s,
		 uint64_t now)
{
	uint64_t late = now > s->due_host ? now - s->due_host : 0;

	pvtimer_host_fired(ar->pa, s->index, s->gen, to_guest(ar, now));
	s->fired_gen = s->gen;
	s->has_fired = 1;
	agent_slot_drop(a, s);
	agent_queue_shot(a, s, s->vector);
	AGENT_ADD(a, fires, 1);
	AGENT_ADD(a, late_hist[agent_log2_bucket(agent_tsc_to_ns(late))], 1);
}

/* A fire point: fire everything due now and inject it at once. Each slot
 * is re-read first (the cancel race). A slot that reads torn leaves the
 * heap for the to-do set, where parking bounds how often it costs a read;
 * nothing re-enters the heap after @now, so the loop is bounded. */
void agent_fire_due(struct agent *a)
{
	uint64_t now = agent_tsc();
	struct agent_slot *s;

	while ((s = agent_heap_top(&a->heap)) && s->deadline_host <= now) {
		struct agent_area *ar = &a->areas[s->area];
		struct pvtimer_slot_snapshot snap;
		int rc = pvtimer_host_read_slot(ar->pa, s->index,
						to_guest(ar, now), &snap);

		AGENT_ADD(a, slot_reads, 1);
		AGENT_ADD(a, fire_rereads, 1);
		if (rc == 0 && snap.armed && snap.gen == s->gen) {
			fire(a, ar, s, now);
			continue;
		}
		if (rc == -EAGAIN) {
			/* the guest still believes gen held: it stays held
			 * (handed back on stop) but waits in the to-do set */
			agent_heap_remove(&a->heap, s);
			s->held = 0;
			todo_set(ar, s->index);
			misbehave(a, ar, s, now);
			continue;
		}
		AGENT_ADD(a, cancel_races, 1);
		if (rc == 0 && snap.armed)
			(void)hold(a, ar, s, &snap, now);
		else
			agent_slot_drop(a, s);
	}
	agent_flush_shots(a);
}

/* Move the area's pending bits into its to-do set: one exchange per word
 * the summary names and one step per bit, however often guests set them. */
static void drain(struct agent *a, struct agent_area *ar)
{
	struct pvtimer_pending_iter it;
	uint32_t i;

	pvtimer_host_pending_begin(ar->pa, &it);
	while (pvtimer_host_pending_next(ar->pa, &it, &i)) {
		if (!ar->slots[i].bound) {
			AGENT_ADD(a, unbound_pending, 1);
			continue;
		}
		todo_set(ar, i);
	}
}

/* Next set to-do bit at or after @from, wrapping once; nslots if none. */
static uint32_t todo_next(const struct agent_area *ar, uint32_t from)
{
	uint32_t words = (ar->nslots + 63) / 64;

	for (uint32_t k = 0; k <= words; k++) {
		uint32_t w = (from / 64 + k) % words;
		uint64_t bits = ar->todo[w];

		if (k == 0)
			bits &= ~0ull << (from % 64);
		else if (k == words)
			bits &= (from % 64) ? ~(~0ull << (from % 64)) : 0;
		if (bits)
			return w * 64 + (uint32_t)__builtin_ctzll(bits);
	}
	return ar->nslots;
}

/* Read up to @budget slots of the area's to-do set, from its cursor on
 * (once round at most), with a fire point after each read. Parked slots
 * are skipped (their bit stays); the earliest of them is noted so that an
 * adaptive agent wakes then. */
static void serve(struct agent *a, struct agent_area *ar, uint32_t budget,
		  bool all)
{
	uint32_t start = ar->cursor, off = 0, reads = 0, n = ar->nslots;
	bool changes = false;
	uint64_t park_edge = agent_tsc() + a->park_slack_tsc;

	while (off < n) {
		uint32_t i = todo_next(ar, (start + off) % n), d;
		struct agent_slot *s;

		if (i == n)
			break;
		d = (i + n - start) % n;
		if (d < off)
			break; /* came round */
		s = &ar->slots[i];
		if (!all && s->backoff_until > park_edge) {
			if (!a->parked_min || s->backoff_until < a->parked_min)
				a->parked_min = s->backoff_until;
			off = d + 1;
			continue;
		}
		if (reads == budget) {
			/* more now only for real changes: a storm of bits on
			 * quiet slots must not keep an adaptive agent up */
			if (changes)
				a->todo_left = true;
			AGENT_ADD(a, budget_stops, 1);
			off = d; /* first in line next pass */
			break;
		}
		off = d + 1;
		todo_clear(ar, i);
		if (s->backoff_until)
			unpark(ar, s);
		changes |= service(a, ar, s);
		reads++;
		agent_fire_due(a);
	}
	ar->cursor = (start + off) % n;
}

/* One pass over every area, starting from a rotating one. @all (stop,
 * pause): no budget and no parking, so every arm made before the
 * deactivation is read. */
void agent_pending_pass(struct agent *a, bool all)
{
	uint32_t start = a->area_cursor;

	a->todo_left = false;
	a->parked_min = 0;
	for (uint32_t k = 0; k < a->nareas; k++)
		drain(a, &a->areas[k]);
	for (uint32_t k = 0; k < a->nareas; k++) {
		struct agent_area *ar = &a->areas[(start + k) % a->nareas];

		serve(a, ar, all ? UINT32_MAX : AREA_READ_BUDGET, all);
	}
	if (a->nareas)
		a->area_cursor = (start + 1) % a->nareas;
	AGENT_ADD(a, scans, 1);
}

void agent_pass_init(struct agent *a)
{
	a->backoff_base_tsc = agent_ns_to_tsc(BACKOFF_BASE_NS);
	a->backoff_max_tsc = agent_ns_to_tsc(BACKOFF_MAX_NS);
}

/* Forget a slot's history (bind, detach). */
void agent_slot_reset(struct agent_area *ar, struct agent_slot *s)
{
	todo_clear(ar, s->index);
	s->strikes = 0;
	s->backoff_level = 0;
	s->backoff_until = 0;
	s->withdrawn = 0;
}
