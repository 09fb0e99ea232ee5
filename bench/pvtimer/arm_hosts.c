/* SPDX-License-Identifier: MIT */
/* pvtimer-arm-cost: host loops. Each touches the guest-shared lines the way
 * an agent (1.1 or 1.2) does, or, in lockstep, exactly one of them between
 * two arms, so the guest's arm cost can be split by line.
 *
 * The 1.2 agent model republishes its promise only when less than half of
 * the promised distance P remains (hysteresis, the rule libagent follows):
 * the header line the guest reads on every arm is then written once per
 * P/2 at most instead of once per pass, and the heartbeat with it. Passes
 * still run back to back (a dedicated agent core, as libagent did before
 * its passes were paced): a pass before the promise keeps it, whichever
 * promise it is. The paced variant passes only when it renews (every
 * P/2): all a promise asks for, and the guest's lines are then taken once
 * per P/2 instead of once per arm; libagent's dedicated loop does this
 * since issue 10 (bench/agent/arm_cost.c measures the real agent). */
#define _GNU_SOURCE
#include <errno.h>

#include "arm_hosts.h"
#include "exitless/pvtimer_rule.h"
#include "tsc.h"

#define SLOT 0u /* the guest binds slot 0 of a one-slot area */

static struct pvtimer_abi_pending *pending(struct arm_bench *b)
{
	const struct pvtimer_abi_header *h = pvtimer_area_mem(b->area);

	return (void *)((char *)pvtimer_area_mem(b->area) + h->pending_offset);
}

/* 1.2: republish when less than half of the promised distance remains. */
void arm_renew(struct arm_bench *b, uint64_t *promise, uint64_t distance,
	       uint64_t now)
{
	if (*promise && pvtimer_tsc_diff(*promise, now) >= (int64_t)(distance / 2))
		return;
	*promise = now + distance;
	pvtimer_host_publish(b->area, *promise, now);
	b->publishes++;
}

/* 1.1: publish before every pass; the summary was exchanged even when
 * zero, a locked write of the summary line on every pass (modelled by a
 * locked OR of 0: the 1.2 library loads first). */
static void pass_old(struct arm_bench *b)
{
	struct pvtimer_pending_iter it;
	struct pvtimer_slot_snapshot snap;
	uint64_t now = tsc_now();
	uint32_t s;

	pvtimer_host_publish(b->area, now + b->promise_tsc, now);
	b->publishes++;
	__atomic_fetch_or(&pending(b)->summary, 0, __ATOMIC_SEQ_CST);
	pvtimer_host_pending_begin(b->area, &it);
	while (pvtimer_host_pending_next(b->area, &it, &s)) {
		int rc = pvtimer_host_read_slot(b->area, s, now, &snap);

		b->passes++;
		if (rc == -EAGAIN)
			pvtimer_host_requeue(b->area, s);
		else if (rc == 0 && snap.armed)
			pvtimer_host_ack(b->area, s, snap.gen);
	}
}

static void pass_new(struct arm_bench *b, uint64_t *promise)
{
	struct pvtimer_slot_snapshot snap;
	uint64_t mask = 0, torn = 0, now = tsc_now();
	uint32_t slot = SLOT;
	int rc;

	arm_renew(b, promise, b->promise_tsc, now);
	if (pvtimer_host_take_pending_mask(b->area, &mask, 1) <= 0)
		return;
	b->passes++;
	pvtimer_host_read_slots(b->area, &slot, 1, now, &snap, &rc);
	if (rc == -EAGAIN)
		torn = 1;
	else if (rc == 0 && snap.armed)
		pvtimer_host_ack(b->area, slot, snap.gen);
	pvtimer_host_requeue_mask(b->area, &torn, 1);
}

static void step(struct arm_bench *b, uint64_t i, uint64_t *promise)
{
	struct pvtimer_slot_snapshot snap;
	uint64_t now = tsc_now();

	/* the steps that publish nothing keep a long promise (renewed once
	 * or twice a run), so that their arms are held, not fallbacks */
	if (b->host != STEP_PUBLISH && b->host != STEP_PASS_OLD &&
	    b->host != STEP_PASS_NEW)
		arm_renew(b, promise, ARM_LONG_PROMISE_US * b->ticks_per_us, now);
	switch (b->host) {
	case STEP_PUBLISH:
		pvtimer_host_publish(b->area, now + b->promise_tsc, now);
		b->publishes++;
		break;
	case STEP_SUMMARY:
		__atomic_exchange_n(&pending(b)->summary, 0, __ATOMIC_SEQ_CST);
		break;
	case STEP_WORD:
		__atomic_exchange_n(&pending(b)->words[0], 0, __ATOMIC_SEQ_CST);
		break;
	case STEP_READ:
		pvtimer_host_read_slot(b->area, SLOT, now, &snap);
		break;
	case STEP_ACK:
		/* a new generation each time: the status word changes */
		pvtimer_host_ack(b->area, SLOT, (uint32_t)i);
		break;
	case STEP_PASS_OLD:
		pass_old(b);
		break;
	case STEP_PASS_NEW:
		pass_new(b, promise);
		break;
	default:
		break;
	}
}

void *arm_host_main(void *arg)
{
	struct arm_bench *b = arg;
	uint64_t promise = 0;

	if (b->host < STEP_NOTHING) {
		while (__atomic_load_n(&b->run, __ATOMIC_ACQUIRE)) {
			uint64_t now = tsc_now();

			__atomic_store_n(&b->alive_tsc, now, __ATOMIC_RELAXED);
			if (b->host == HOST_OLD)
				pass_old(b);
			else if (b->host == HOST_NEW ||
				 !promise || pvtimer_tsc_diff(promise, now) <
						     (int64_t)(b->promise_tsc / 2))
				pass_new(b, &promise);
			else
				__builtin_ia32_pause();
		}
		return NULL;
	}
	for (uint64_t i = 1;; i++) {
		while (__atomic_load_n(&b->done, __ATOMIC_ACQUIRE) != i - 1)
			if (!__atomic_load_n(&b->run, __ATOMIC_ACQUIRE))
				return NULL;
		step(b, i, &promise);
		__atomic_store_n(&b->ready, i, __ATOMIC_RELEASE);
	}
}

const char *arm_host_name(enum arm_host h)
{
	static const char *const names[ARM_HOST_COUNT] = {
		[HOST_OLD] = "servicing, 1.1 agent loop",
		[HOST_NEW] = "servicing, 1.2 agent loop",
		[HOST_PACED] = "servicing, 1.2 paced: pass at renewal",
		[STEP_NOTHING] = "lockstep: handshake only",
		[STEP_PUBLISH] = "lockstep: header line 1 written",
		[STEP_SUMMARY] = "lockstep: summary line exchanged",
		[STEP_WORD] = "lockstep: pending word exchanged",
		[STEP_READ] = "lockstep: guest line read",
		[STEP_ACK] = "lockstep: slot host line written",
		[STEP_PASS_OLD] = "lockstep: one 1.1 pass",
		[STEP_PASS_NEW] = "lockstep: one 1.2 pass",
	};

	return h < ARM_HOST_COUNT ? names[h] : "?";
}
