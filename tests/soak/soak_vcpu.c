/* SPDX-License-Identifier: MIT */
/* A simulated vCPU: one logical timer armed and cancelled through the
 * guest helpers, every decision followed (a positive one programs the
 * simulated hardware timer at pvtimer_guest_hw_deadline()), interrupts
 * classified with pvtimer_guest_on_interrupt() and hardware timer expiries
 * with pvtimer_guest_on_hw_timer(). The guest's timer code is deliver():
 * it must see every live deadline exactly once, never before it, and never
 * later than LOST_US (a lost timer). Each delivery is counted by the path
 * that brought it. */
#define _GNU_SOURCE
#include <sched.h>

#include "../common/tsc.h"
#include "soak.h"

/* Far beyond any lateness a loaded machine causes (1.9 s seen at load 11
 * on 2 CPUs, niced): a lost timer stays lost, so this costs no detection. */
#define LOST_US 10000000ull
#define FAIL(v, field) (__atomic_fetch_add(&(v)->field, 1, __ATOMIC_RELAXED))

static uint64_t next_rand(struct soak_vcpu *v)
{
	v->rng ^= v->rng << 13;
	v->rng ^= v->rng >> 7;
	v->rng ^= v->rng << 17;
	return v->rng;
}

static void program(struct soak_vcpu *v, enum soak_path why)
{
	v->hw_on = 1;
	v->hw_at = pvtimer_guest_hw_deadline(&v->g);
	v->hw_why = why;
}

/* Follow a decision (0: nothing to program). */
static void follow(struct soak_vcpu *v, int r, enum soak_path why)
{
	if (r < 0 || r > 8) {
		FAIL(v, bad_decisions);
		return;
	}
	v->decisions[r]++;
	if (r == PVTIMER_GUEST_BACKSTOP)
		program(v, PATH_BACKSTOP);
	else if (r == PVTIMER_GUEST_FALLBACK_FIRED) /* injection lost or early */
		program(v, PATH_FIRED);
	else if (r)
		program(v, why);
}

static void deliver(struct soak_vcpu *v, enum soak_path path)
{
	uint64_t now = tsc_now();

	if (!v->live) {
		FAIL(v, doubles); /* nothing live: a second delivery */
		return;
	}
	if ((int64_t)(now - v->deadline) < 0) {
		FAIL(v, early);
		return;
	}
	v->live = 0;
	v->delivered[path]++;
	v->late_sum += now - v->deadline;
	if (now - v->deadline > v->late_max)
		v->late_max = now - v->deadline;
	if (now - v->deadline > v->late_max_path[path])
		v->late_max_path[path] = now - v->deadline;
}

static uint32_t status_code(const struct soak_vcpu *v)
{
	return PVTIMER_STATUS_CODE(__atomic_load_n(&v->g.slot->status_word,
						   __ATOMIC_ACQUIRE));
}

static void service_irq(struct soak_vcpu *v)
{
	uint32_t code;
	int r;

	if (!__atomic_exchange_n(&v->irr, 0, __ATOMIC_ACQUIRE))
		return;
	code = status_code(v);
	r = pvtimer_guest_on_interrupt(&v->g);
	switch (r) {
	case PVTIMER_GUEST_IRQ_EXPIRED:
		deliver(v, PATH_PV);
		break;
	case PVTIMER_GUEST_IRQ_HANDBACK:
		program(v, code == PVTIMER_STATUS_REJECTED ? PATH_REJECT : PATH_HANDBACK);
		break;
	case PVTIMER_GUEST_IRQ_EARLY:
		program(v, PATH_EARLY);
		break;
	default:
		v->spurious++;
		break;
	}
}

/* "Run timers": whatever is live and due is delivered, by the path that
 * programmed the hardware timer. */
static void service_hw(struct soak_vcpu *v)
{
	enum soak_path why = v->hw_why;
	int r;

	if (!v->hw_on || (int64_t)(tsc_now() - v->hw_at) < 0)
		return;
	v->hw_on = 0;
	r = pvtimer_guest_on_hw_timer(&v->g);
	if (r == PVTIMER_GUEST_HW_EXPIRED) {
		if (v->live && (int64_t)(tsc_now() - v->deadline) >= 0)
			deliver(v, why);
	} else if (r != PVTIMER_GUEST_HW_IGNORE) {
		follow(v, r, PATH_HWCHECK);
	}
}

static void service(struct soak_vcpu *v)
{
	service_irq(v);
	service_hw(v);
}

/* Halt until an interrupt or the hardware timer, as a vCPU would; the
 * timer must come within LOST_US of its deadline. */
static void halt(struct soak_vcpu *v)
{
	uint64_t give_up = v->deadline + LOST_US * soak.tpu;

	v->halts++;
	follow(v, pvtimer_guest_before_halt(&v->g), PATH_HALT);
	while (v->live) {
		uint64_t now = tsc_now();

		if (__atomic_load_n(&v->irr, __ATOMIC_ACQUIRE) ||
		    (v->hw_on && (int64_t)(now - v->hw_at) >= 0)) {
			service(v);
			continue;
		}
		if ((int64_t)(now - give_up) > 0) {
			FAIL(v, lost);
			v->live = 0;
			return;
		}
		sched_yield(); /* a halted vCPU leaves the CPU to the agent */
	}
}

/* A live deadline that has passed must be delivered before the guest
 * replaces it: otherwise a lost timer would hide as a superseded one. */
static void settle(struct soak_vcpu *v)
{
	if (v->live && (int64_t)(tsc_now() - v->deadline) >= 0)
		halt(v);
	if (v->live)
		v->superseded++;
	v->live = 0;
}

static void note_arm(struct soak_vcpu *v, uint32_t gen, uint64_t deadline)
{
	struct soak_known *k = &v->known[v->known_next++ % SOAK_KNOWN];

	/* a refused arm leaves its number unused: invalidate older copies */
	for (uint32_t i = 0; i < SOAK_KNOWN; i++)
		if (__atomic_load_n(&v->known[i].gen, __ATOMIC_RELAXED) == gen)
			__atomic_store_n(&v->known[i].valid, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&k->valid, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&k->gen, gen, __ATOMIC_RELAXED);
	__atomic_store_n(&k->deadline, deadline, __ATOMIC_RELAXED);
	__atomic_store_n(&k->valid, 1, __ATOMIC_RELEASE);
}

/* A misbehaving guest: the arm just published gets an unknown flag bit, so
 * the host rejects it and owes it one wake (rule 1). */
static void corrupt_arm(struct soak_vcpu *v)
{
	struct pvtimer_abi_slot *s = v->g.slot;

	if (!v->g.pv_armed)
		return;
	/* the guest's seqlock; release keeps the odd seq first (no fence:
	 * TSan cannot model one) */
	__atomic_store_n(&s->seq, v->g.seq + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->arm_flags, (uint8_t)(PVTIMER_ARM_ARMED | 0x80),
			 __ATOMIC_RELEASE);
	__atomic_store_n(&s->seq, v->g.seq + 2, __ATOMIC_RELEASE);
	v->g.seq += 2;
	__atomic_fetch_or(v->g.pending_word, v->g.slot_bit, __ATOMIC_SEQ_CST);
	__atomic_fetch_or(v->g.pending_summary, v->g.summary_bit, __ATOMIC_SEQ_CST);
}

static void arm(struct soak_vcpu *v, uint64_t r)
{
	uint64_t deadline = tsc_now() + (5 + (r >> 20) % 300) * soak.tpu;

	settle(v);
	v->arms++;
	v->live = 1;
	v->deadline = deadline;
	note_arm(v, v->g.gen + 1, deadline);
	follow(v, pvtimer_guest_arm(&v->g, deadline), PATH_FALLBACK);
	if ((r >> 40) % 500 == 0)
		corrupt_arm(v);
}

void *soak_vcpu_main(void *arg)
{
	struct soak_vcpu *v = arg;

	pvtimer_guest_set_backstop(&v->g, soak.backstop);
	for (long op = 0; op < v->ops_target; op++) {
		uint64_t r = next_rand(v), until;

		service(v);
		v->ops++;
		switch ((r >> 8) % 16) {
		case 0:
			settle(v);
			pvtimer_guest_cancel(&v->g);
			v->cancels++;
			break;
		case 1:
		case 2:
		case 6:
		case 7:
			if (v->live)
				halt(v);
			break;
		case 3:
		case 4:
		case 5: /* work: interrupts and the timer arrive meanwhile */
			until = tsc_now() + (r >> 32) % (3 * soak.tpu);
			while ((int64_t)(tsc_now() - until) < 0)
				service(v);
			break;
		default:
			arm(v, r);
			break;
		}
	}
	/* quiesce: the last live timer must still come */
	if (v->live)
		halt(v);
	return NULL;
}
