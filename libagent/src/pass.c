/* SPDX-License-Identifier: MIT */
/* One pending pass: take each area's pending bits, read at most
 * AREA_READ_BUDGET slots per area (one read per slot) with a fire point
 * after each read, mark pending again every bit taken but not read, and
 * park slots that misbehave. The bounds keep one VM from delaying another:
 *
 * - an area costs a pass at most AREA_READ_BUDGET reads (and as many fires
 *   and reject wakes); a slot at most one read and one fire;
 * - a bit taken but not read (budget, torn line) is marked pending again
 *   (pvtimer_host_requeue) before the pass ends: never abandoned (spec §5),
 *   and the next pass starts reading the area where this one stopped;
 * - a due deadline is fired and injected at the first fire point after it
 *   falls due (after every read), not after the whole pass; a past arm is
 *   due from the time it was read, so it never goes ahead of a deadline
 *   that fell due before that read;
 * - a slot that reads torn, rejected or already due on consecutive reads
 *   is parked (park.c). */
#define _GNU_SOURCE
#include <errno.h>

#include "internal.h"

/* Slot reads per area per pass. A read of a line the guest is writing
 * costs ~0.2 us here, so 16 keep a pass well inside the 20 us spin
 * promise however many slots an area marks; an honest area with more
 * changed slots than that between two passes is read over several passes
 * (the next one at once, see todo_left). */
#define AREA_READ_BUDGET 16u
/* Requeues between two fire points. */
#define REQUEUE_FIRE_EVERY 8u

void agent_todo_set(struct agent_area *ar, uint32_t i)
{
	ar->todo[i / 64] |= 1ull << (i % 64);
}

static void todo_clear(struct agent_area *ar, uint32_t i)
{
	ar->todo[i / 64] &= ~(1ull << (i % 64));
}

void agent_slot_drop(struct pvagent *a, struct agent_slot *s)
{
	if (!s->held)
		return;
	agent_heap_remove(&a->heap, s);
	s->held = 0;
}

/* Take over the generation in @snap (valid and armed). A recheck here is
 * a generation we let go of after a torn fire-time read: held again, not
 * counted again, its lateness still from its first read. */
static void hold(struct pvagent *a, struct agent_area *ar, struct agent_slot *s,
		 const struct pvtimer_slot_snapshot *snap, uint64_t now)
{
	uint64_t key = agent_to_host(ar, snap->deadline_tsc);

	agent_slot_drop(a, s);
	s->gen = snap->gen;
	s->vector = snap->vector;
	s->held = 1;
	pvtimer_host_ack(ar->pa, s->index, snap->gen);
	if (snap->recheck) {
		agent_heap_set(&a->heap, s, snap->past ? now : key);
		return;
	}
	if (snap->past) {
		/* due since it was read: after every deadline that fell due
		 * before this read, before those due after it; lateness
		 * counts from here, so a guest arming in the past cannot
		 * make the agent look late */
		AGENT_ADD(a, past_arms, 1);
		key = now;
		agent_misbehave(a, ar, s, now);
	} else {
		agent_behave(a, ar, s);
	}
	s->due_host = key;
	agent_heap_set(&a->heap, s, key);
}

/* A rejected generation's one wake: on the vector the library names, 0
 * meaning the injector's own (agent.h). */
static void reject_wake(struct pvagent *a, struct agent_slot *s,
			const struct pvtimer_slot_snapshot *snap)
{
	if (!snap->wake)
		return;
	agent_queue_shot(a, s, snap->vector);
	AGENT_ADD(a, reject_wakes, 1);
}

/* Read one slot whose bit was taken. @return true if it showed a change.
 * An unchanged line (a bit set with no change, a resume's re-read) is
 * neither good nor bad: another vCPU of the same VM may set any bit of
 * its area, and must not get an honest sibling parked by it. */
static bool service(struct pvagent *a, struct agent_area *ar,
		    struct agent_slot *s)
{
	struct pvtimer_slot_snapshot snap;
	uint64_t now = agent_tsc();
	int rc = pvtimer_host_read_slot(ar->pa, s->index, agent_to_guest(ar, now),
					&snap);
	bool unchanged;

	AGENT_ADD(a, slot_reads, 1);
	if (rc == -EAGAIN) {
		/* mid-write: keep what we hold; the bit goes back */
		pvtimer_host_requeue(ar->pa, s->index);
		agent_misbehave(a, ar, s, now);
		return true;
	}
	if (rc < 0) {
		/* rejected: the library wrote REJECTED; wake it once */
		agent_slot_drop(a, s);
		reject_wake(a, s, &snap);
		agent_misbehave(a, ar, s, now);
		return true;
	}
	unchanged = (snap.recheck && s->held) || snap.already_fired ||
		    (!snap.armed && !s->held && s->seen_cancel &&
		     s->seen_gen == snap.gen);
	s->seen_gen = snap.gen;
	s->seen_cancel = !snap.armed && !snap.already_fired;
	if (snap.already_fired)
		AGENT_ADD(a, refires_refused, 1);
	if (unchanged)
		return false;
	if (!snap.armed) {
		agent_slot_drop(a, s); /* a cancel */
		agent_behave(a, ar, s);
		return true;
	}
	hold(a, ar, s, &snap, now);
	return true;
}

static void fire(struct pvagent *a, struct agent_area *ar, struct agent_slot *s,
		 uint64_t now)
{
	uint64_t late = now > s->due_host ? now - s->due_host : 0;
	uint32_t b = agent_log2_bucket(agent_tsc_to_ns(&a->clk, late));

	pvtimer_host_fired(ar->pa, s->index, s->gen, agent_to_guest(ar, now));
	agent_slot_drop(a, s);
	agent_queue_shot(a, s, s->vector);
	/* nothing to batch with: out now, not after the re-reads of every
	 * other deadline due at this fire point */
	if (!agent_shots_batch(a))
		agent_flush_shots(a);
	AGENT_ADD(a, fires, 1);
	AGENT_ADD(a, late_hist[b], 1);
}

/* A fire point: fire everything due now and inject it at once. Each slot
 * is re-read first (the cancel race). A torn line leaves the heap and its
 * bit goes back: the next read decides (and parking bounds how often a
 * slot that never settles costs one); nothing re-enters the heap after
 * @now, so the loop is bounded by the held slots. */
void agent_fire_due(struct pvagent *a)
{
	uint64_t now = agent_tsc();
	struct agent_slot *s;

	a->diag.fp_prev_start = a->diag.fp_start;
	a->diag.fp_start = now;
	a->diag.fp_prev_reads = a->diag.fp_reads;
	a->diag.fp_reads = a->st.slot_reads;
	while ((s = agent_heap_top(&a->heap)) && s->deadline_host <= now) {
		struct agent_area *ar = &a->areas[s->area];
		struct pvtimer_slot_snapshot snap;
		int rc = pvtimer_host_read_slot(ar->pa, s->index,
						agent_to_guest(ar, now), &snap);

		AGENT_ADD(a, slot_reads, 1);
		AGENT_ADD(a, fire_rereads, 1);
		/* exactly the arm held: same generation and deadline (the
		 * number alone comes back after 2^32 publishes, with another
		 * deadline: a new arm, held again below) */
		if (rc == 0 && snap.armed && snap.gen == s->gen && snap.recheck) {
			fire(a, ar, s, now);
			continue;
		}
		if (rc == -EAGAIN) {
			agent_slot_drop(a, s);
			pvtimer_host_requeue(ar->pa, s->index);
			agent_misbehave(a, ar, s, now);
			continue;
		}
		AGENT_ADD(a, cancel_races, 1);
		agent_slot_drop(a, s);
		if (rc == 0 && snap.armed) {
			s->seen_gen = snap.gen;
			s->seen_cancel = 0;
			hold(a, ar, s, &snap, now);
		} else if (rc < 0) {
			reject_wake(a, s, &snap);
			agent_misbehave(a, ar, s, now);
		}
	}
	agent_flush_shots(a);
}

/* Take the area's pending bits into its to-do set: one exchange per word
 * the summary names and one step per bit, however often guests set them.
 * A parked slot's bits are consumed unread: its promise is withdrawn and
 * the read owed after the withdrawal is its own flag (park.c). */
static void drain(struct pvagent *a, struct agent_area *ar, bool all)
{
	struct pvtimer_pending_iter it;
	uint32_t i;

	pvtimer_host_pending_begin(ar->pa, &it);
	while (pvtimer_host_pending_next(ar->pa, &it, &i)) {
		struct agent_slot *s = &ar->slots[i];

		if (!s->bound) {
			AGENT_ADD(a, unbound_pending, 1);
			continue;
		}
		if (!all && s->parked_idx != AGENT_PARK_NONE && !s->owed) {
			AGENT_ADD(a, parked_pending, 1);
			continue;
		}
		agent_todo_set(ar, i);
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

/* Every bit left in the to-do set goes back to guest memory: two RMWs on
 * lines the guest may be hammering, so with a fire point every few. */
static void requeue_rest(struct pvagent *a, struct agent_area *ar)
{
	uint32_t words = (ar->nslots + 63) / 64, k = 0;

	for (uint32_t w = 0; w < words; w++)
		while (ar->todo[w]) {
			uint32_t b = (uint32_t)__builtin_ctzll(ar->todo[w]);

			ar->todo[w] &= ar->todo[w] - 1;
			pvtimer_host_requeue(ar->pa, w * 64 + b);
			if (++k % REQUEUE_FIRE_EVERY == 0)
				agent_fire_due(a);
		}
}

/* Read up to @budget slots of the area's to-do set, from its cursor on,
 * with a fire point after each read; what is left goes back pending. */
static void serve(struct pvagent *a, struct agent_area *ar, uint32_t budget)
{
	uint32_t start = ar->cursor, off = 0, reads = 0, n = ar->nslots;
	bool changes = false;

	while (off < n) {
		uint32_t i = todo_next(ar, (start + off) % n), d;
		struct agent_slot *s;

		if (i == n)
			break;
		d = (i + n - start) % n;
		if (d < off)
			break; /* came round */
		if (reads == budget) {
			/* another pass at once while this sweep found
			 * changes or has not yet gone round the area since
			 * the agent last slept: every bit taken before a
			 * sleep is read before it, yet a storm of bits on
			 * quiet slots costs an adaptive agent one round of
			 * the area per wake, not a spin */
			if (changes || ar->reads_awake < n)
				a->todo_left = true;
			AGENT_ADD(a, budget_stops, 1);
			off = d; /* first in line next pass */
			break;
		}
		off = d + 1;
		todo_clear(ar, i);
		s = &ar->slots[i];
		/* the owed read must follow an exchange made after the
		 * withdrawal: this pass's, if it was parked before it */
		if (s->owed && a->pass_no != s->owed_pass)
			s->owed = 0;
		changes |= service(a, ar, s);
		reads++;
		if (ar->reads_awake < UINT32_MAX)
			ar->reads_awake++;
		agent_fire_due(a);
	}
	ar->cursor = (start + off) % n;
	requeue_rest(a, ar);
}

/* One pass over every area, from a rotating first one. @all (stop,
 * pause): no budget, parked slots read too, so every arm made before the
 * deactivation is read. */
void agent_pending_pass(struct pvagent *a, bool all)
{
	uint32_t start = a->area_cursor;

	a->todo_left = false;
	a->pass_no++;
	agent_unpark_due(a, all);
	for (uint32_t k = 0; k < a->nareas; k++)
		drain(a, &a->areas[k], all);
	for (uint32_t k = 0; k < a->nareas; k++)
		serve(a, &a->areas[(start + k) % a->nareas],
		      all ? UINT32_MAX : AREA_READ_BUDGET);
	if (a->nareas)
		a->area_cursor = (start + 1) % a->nareas;
	AGENT_ADD(a, scans, 1);
}
