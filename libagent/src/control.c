/* SPDX-License-Identifier: MIT */
/* What the commands do: activate (start, resume), quiesce (stop, pause:
 * no promise from here on, one more pass, hand back what is held), bind
 * and detach a slot. They run on the agent thread between two passes
 * (mailbox.h), or on the caller's thread while the thread is stopped. */
#define _GNU_SOURCE
#include <errno.h>

#include "internal.h"

static void handback(struct pvagent *a, struct agent_slot *s, uint32_t gen)
{
	pvtimer_host_handback(a->areas[s->area].pa, s->index, gen);
	agent_slot_drop(a, s);
	agent_queue_shot(a, s, s->vector);
	AGENT_ADD(a, handbacks, 1);
}

void agent_control_activate(struct pvagent *a)
{
	uint64_t now = agent_tsc();
	uint64_t promise = agent_promise_next(&a->pr, now, 0);

	/* nothing stands after a quiesce: agent_promise_next() publishes */
	for (uint32_t k = 0; k < a->nareas; k++)
		pvtimer_host_activate(a->areas[k].pa,
				      agent_to_guest(&a->areas[k], promise),
				      agent_to_guest(&a->areas[k], now));
	a->pr.standing = promise;
	/* the activation's store plays the part of pass 0's (spec §5): the
	 * first pass owes it, and follows on the next turn */
	a->pass_promise = promise;
	a->pass_owed = true;
	AGENT_ADD(a, publishes, 1);
}

/* Stop or pause: no promise from here on; one more pass catches arms made
 * before the guests could see it; what is not due yet goes back. */
void agent_control_quiesce(struct pvagent *a)
{
	struct agent_slot *s;

	for (uint32_t k = 0; k < a->nareas; k++)
		pvtimer_host_deactivate(a->areas[k].pa);
	a->pr.standing = 0;
	agent_pending_pass(a, true);
	agent_fire_due(a);
	while ((s = agent_heap_top(&a->heap)))
		handback(a, s, s->gen);
	agent_flush_shots(a);
}

static void bind(struct pvagent *a, uint32_t area, uint32_t slot,
		 const struct pvagent_injector *inj)
{
	struct agent_area *ar = &a->areas[area];

	agent_slot_reset(a, &ar->slots[slot]);
	ar->slots[slot].inj = *inj;
	ar->slots[slot].ring_ok = agent_injector_ring_ok(inj);
	ar->slots[slot].bound = 1;
	pvtimer_host_set_slot_sync(ar->pa, slot, PVTIMER_SYNC_FOLLOW_AREA);
	pvtimer_host_requeue(ar->pa, slot);
}

/* Withdraw the slot's promise first (seq_cst), take its pending bit with
 * a seq_cst RMW, then read it (spec §5): whatever generation its guest
 * may believe held (ours, or one armed before it saw NEVER) goes back. A
 * generation already fired reads as not armed. */
static void detach(struct pvagent *a, uint32_t area, uint32_t slot, bool live)
{
	struct agent_area *ar = &a->areas[area];
	struct agent_slot *s = &ar->slots[slot];
	struct pvtimer_slot_snapshot snap;
	int rc;

	if (!s->bound)
		return;
	pvtimer_host_set_slot_sync(ar->pa, slot, PVTIMER_SYNC_NEVER);
	pvtimer_host_take_pending(ar->pa, slot);
	if (live) {
		rc = pvtimer_host_read_slot(ar->pa, slot,
					    agent_to_guest(ar, agent_tsc()), &snap);
		AGENT_ADD(a, slot_reads, 1);
		if (rc == 0 && snap.armed) {
			s->vector = snap.vector;
			handback(a, s, snap.gen);
		} else if (s->held) {
			handback(a, s, s->gen);
		} else if (rc == -EINVAL && snap.wake) {
			agent_queue_shot(a, s, snap.vector);
			AGENT_ADD(a, reject_wakes, 1);
		}
		agent_flush_shots(a);
	}
	agent_slot_drop(a, s);
	agent_slot_reset(a, s);
	s->bound = 0;
}

int agent_control_exec(struct pvagent *a, const struct agent_cmd *c)
{
	switch (c->kind) {
	case AGENT_CMD_BIND:
		bind(a, c->area, c->slot, &c->inj);
		return 0;
	case AGENT_CMD_DETACH:
		detach(a, c->area, c->slot, c->live);
		return 0;
	case AGENT_CMD_PAUSE:
		agent_control_quiesce(a);
		a->paused = true;
		return 0;
	case AGENT_CMD_RESUME:
		agent_control_activate(a);
		a->paused = false;
		return 0;
	case AGENT_CMD_STOP:
		if (!a->paused)
			agent_control_quiesce(a);
		a->quit = true;
		return 0;
	default:
		return -EINVAL;
	}
}
