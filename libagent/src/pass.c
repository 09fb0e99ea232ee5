/* SPDX-License-Identifier: MIT */
/* One pending pass: take each area's pending bits (one library call per
 * area: pvtimer_host_take_pending_mask), read at most AREA_READ_BUDGET
 * slots per area (one read per slot, READ_CHUNK per library call) with a
 * fire point after each chunk, mark pending again every bit taken but not
 * read (one call: pvtimer_host_requeue_mask), and park slots that
 * misbehave. The bounds keep one VM from delaying another:
 *
 * - an area costs a pass at most AREA_READ_BUDGET reads (and as many fires
 *   and reject wakes); a slot at most one read and one fire;
 * - a bit taken but not read (budget, torn line) is marked pending again
 *   before the pass ends: never abandoned (spec §5), and the next pass
 *   starts reading the area where this one stopped;
 * - a due deadline is fired and injected at the first fire point after it
 *   falls due (after every chunk of reads), not after the whole pass; a past arm is
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
/* Slots read in one library call between two fire points: the lines are
 * prefetched one after the other, and a fire point still comes after at
 * most this many reads. */
#define READ_CHUNK 4u
/* Due slots re-read in one library call at a fire point. */
#define FIRE_CHUNK 16u

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
		    struct agent_slot *s, int rc,
		    const struct pvtimer_slot_snapshot *snapp, uint64_t now)
{
	struct pvtimer_slot_snapshot snap = *snapp;
	bool unchanged;

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
	AGENT_ADD(a, fires, 1);
	AGENT_ADD(a, late_hist[b], 1);
}

/* What the fire-time re-read of held slot @s found. */
static void refire(struct pvagent *a, struct agent_slot *s, int rc,
		   const struct pvtimer_slot_snapshot *snap, uint64_t now)
{
	struct agent_area *ar = &a->areas[s->area];

	/* exactly the arm held: same generation and deadline (the number
	 * alone comes back after 2^32 publishes, with another deadline: a
	 * new arm, held again below) */
	if (rc == 0 && snap->armed && snap->gen == s->gen && snap->recheck) {
		fire(a, ar, s, now);
		return;
	}
	if (rc == -EAGAIN) {
		agent_slot_drop(a, s);
		pvtimer_host_requeue(ar->pa, s->index);
		agent_misbehave(a, ar, s, now);
		return;
	}
	AGENT_ADD(a, cancel_races, 1);
	agent_slot_drop(a, s);
	if (rc == 0 && snap->armed) {
		s->seen_gen = snap->gen;
		s->seen_cancel = 0;
		hold(a, ar, s, snap, now);
	} else if (rc < 0) {
		reject_wake(a, s, snap);
		agent_misbehave(a, ar, s, now);
	}
}

/* A fire point: fire everything due now and inject it at once. Each slot
 * is re-read first (the cancel race), up to FIRE_CHUNK of them in one
 * library call per area (the lines prefetched one after the other). A
 * due slot leaves the heap while it is re-read (still held); a torn line
 * goes back pending and the next read decides (parking bounds how often
 * a slot that never settles costs one); what re-enters the heap is a new
 * arm, which a later round of the loop fires if it is due: the loop is
 * bounded by the held slots. */
void agent_fire_due(struct pvagent *a)
{
	uint64_t now = agent_tsc();
	struct agent_slot *s, *due[FIRE_CHUNK];
	struct pvtimer_slot_snapshot snaps[FIRE_CHUNK];
	uint32_t idx[FIRE_CHUNK];
	int rcs[FIRE_CHUNK];

	a->diag.fp_prev_start = a->diag.fp_start;
	a->diag.fp_start = now;
	a->diag.fp_prev_reads = a->diag.fp_reads;
	a->diag.fp_reads = a->st.slot_reads;
	for (;;) {
		uint32_t k = 0;

		while (k < FIRE_CHUNK && (s = agent_heap_top(&a->heap)) &&
		       s->deadline_host <= now) {
			agent_heap_remove(&a->heap, s);
			due[k++] = s;
		}
		if (!k)
			break;
		AGENT_ADD(a, slot_reads, k);
		AGENT_ADD(a, fire_rereads, k);
		/* one call per run of slots of the same area */
		for (uint32_t j = 0, e; j < k; j = e) {
			struct agent_area *ar = &a->areas[due[j]->area];

			for (e = j; e < k && due[e]->area == due[j]->area; e++)
				idx[e - j] = due[e]->index;
			pvtimer_host_read_slots(ar->pa, idx, e - j,
						agent_to_guest(ar, now), &snaps[j],
						&rcs[j]);
			for (uint32_t i = j; i < e; i++)
				refire(a, due[i], rcs[i], &snaps[i], now);
		}
		/* each decision right after its re-read; then, with nothing
		 * to batch with, the shots go out now rather than after the
		 * re-reads of every other deadline due at this fire point */
		if (!agent_shots_batch(a))
			agent_flush_shots(a);
	}
	agent_flush_shots(a);
}

/* Take the area's pending bits into its to-do set: one exchange per word
 * the summary names and one step per bit, however often guests set them.
 * A parked slot's bits are consumed unread: its promise is withdrawn and
 * the read owed after the withdrawal is its own flag (park.c). */
static void drain(struct pvagent *a, struct agent_area *ar, bool all)
{
	uint32_t words = (ar->nslots + 63) / 64;

	for (uint32_t w = 0; w < words; w++)
		ar->taken[w] = 0;
	if (pvtimer_host_take_pending_mask(ar->pa, ar->taken, words) <= 0)
		return;
	a->diag.takes++;
	for (uint32_t w = 0; w < words; w++)
		for (uint64_t bits = ar->taken[w]; bits; bits &= bits - 1) {
			uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
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

/* Every bit left in the to-do set goes back to guest memory: one OR per
 * word that has any (and of the summary), then a fire point. */
static void requeue_rest(struct pvagent *a, struct agent_area *ar)
{
	uint32_t words = (ar->nslots + 63) / 64;
	uint64_t any = 0;

	for (uint32_t w = 0; w < words; w++)
		any |= ar->todo[w];
	if (!any)
		return;
	pvtimer_host_requeue_mask(ar->pa, ar->todo, words);
	for (uint32_t w = 0; w < words; w++)
		ar->todo[w] = 0;
	agent_fire_due(a);
}

/* Read the @k slots @idx (their bits taken) in one library call, then
 * service each. @return true if any showed a change. */
static bool read_chunk(struct pvagent *a, struct agent_area *ar,
		       const uint32_t *idx, uint32_t k)
{
	struct pvtimer_slot_snapshot snaps[READ_CHUNK];
	int rcs[READ_CHUNK];
	uint64_t now = agent_tsc();
	bool changes = false;

	pvtimer_host_read_slots(ar->pa, idx, k, agent_to_guest(ar, now), snaps,
				rcs);
	AGENT_ADD(a, slot_reads, k);
	/* each read its own time, one tick apart, as when read one by one:
	 * past arms of one chunk stay in read order among themselves */
	for (uint32_t j = 0; j < k; j++)
		changes |= service(a, ar, &ar->slots[idx[j]], rcs[j], &snaps[j],
				   now + j);
	return changes;
}

/* Read up to @budget slots of the area's to-do set, from its cursor on,
 * with a fire point after each read; what is left goes back pending. */
static void serve(struct pvagent *a, struct agent_area *ar, uint32_t budget)
{
	uint32_t start = ar->cursor, off = 0, reads = 0, n = ar->nslots;
	bool changes = false, at_budget = false, done = false;
	uint32_t idx[READ_CHUNK];

	while (!done && off < n) {
		uint32_t k = 0;

		while (k < READ_CHUNK && off < n) {
			uint32_t i = todo_next(ar, (start + off) % n), d;
			struct agent_slot *s;

			if (i == n) {
				done = true;
				break;
			}
			d = (i + n - start) % n;
			if (d < off) {
				done = true; /* came round */
				break;
			}
			if (reads + k == budget) {
				at_budget = done = true;
				off = d; /* first in line next pass */
				break;
			}
			off = d + 1;
			todo_clear(ar, i);
			s = &ar->slots[i];
			/* the owed read must follow an exchange made after
			 * the withdrawal: this pass's, if it was parked
			 * before it */
			if (s->owed && a->pass_no != s->owed_pass)
				s->owed = 0;
			idx[k++] = i;
		}
		if (!k)
			break;
		changes |= read_chunk(a, ar, idx, k);
		reads += k;
		ar->reads_awake = ar->reads_awake > UINT32_MAX - k
					  ? UINT32_MAX
					  : ar->reads_awake + k;
		agent_fire_due(a);
	}
	if (at_budget) {
		/* another pass at once while this sweep found changes or has
		 * not yet gone round the area since the agent last slept:
		 * every bit taken before a sleep is read before it, yet a
		 * storm of bits on quiet slots costs an adaptive agent one
		 * round of the area per wake, not a spin */
		if (changes || ar->reads_awake < n)
			a->todo_left = true;
		AGENT_ADD(a, budget_stops, 1);
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
	uint64_t now;

	a->todo_left = false;
	a->pass_owed = false;
	a->pass_no++;
	agent_unpark_due(a, all);
	/* spec §5: this pass must begin (its first summary access, below)
	 * by the value that stood at the previous one's; a preempted turn
	 * breaks it, and only a pass can (turns between passes owe no one) */
	now = agent_tsc();
	if (a->pass_promise && now > a->pass_promise)
		AGENT_ADD(a, promises_late, 1);
	a->pass_promise = a->pr.standing;
	for (uint32_t k = 0; k < a->nareas; k++)
		drain(a, &a->areas[k], all);
	for (uint32_t k = 0; k < a->nareas; k++)
		serve(a, &a->areas[(start + k) % a->nareas],
		      all ? UINT32_MAX : AREA_READ_BUDGET);
	if (a->nareas)
		a->area_cursor = (start + 1) % a->nareas;
	AGENT_ADD(a, scans, 1);
}
