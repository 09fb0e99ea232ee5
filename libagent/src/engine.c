/* SPDX-License-Identifier: MIT */
/* The agent thread: publish a promise, take the pending slots, fire what is
 * due, then spin or sleep. Every promise is the time by which the next pass
 * will have started, so it covers whatever the thread does in between. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Iterations per window of the spin-pass bound. */
#define ITER_WINDOW 1024u
/* Overshoot samples before the measured bound replaces the floor alone. */
#define WAKE_MIN_SAMPLES 32u
/* Overshoot samples after which the history is halved. */
#define WAKE_WINDOW 4096u

static uint64_t to_guest(const struct agent_area *ar, uint64_t host)
{
	return pvtimer_tsc_to_guest(&ar->map, host);
}

static void handback(struct pvagent *a, struct agent_slot *s, uint32_t gen)
{
	pvtimer_host_handback(a->areas[s->area].pa, s->index, gen);
	agent_slot_drop(a, s);
	agent_queue_shot(a, s, s->vector);
	AGENT_ADD(a, handbacks, 1);
}

static void publish(struct pvagent *a, uint64_t promise, uint64_t now)
{
	for (uint32_t k = 0; k < a->nareas; k++)
		pvtimer_host_publish(a->areas[k].pa,
				     to_guest(&a->areas[k], promise),
				     to_guest(&a->areas[k], now));
	a->promised_host = promise;
}

static uint64_t iter_bound(struct pvagent *a)
{
	uint64_t m = a->iter_max_cur > a->iter_max_prev ? a->iter_max_cur
							 : a->iter_max_prev;
	uint64_t floor = agent_ns_to_tsc(a->opts.spin_sync_ns);

	m = 2 * m > floor ? 2 * m : floor;
	return m < a->bound_cap_tsc ? m : a->bound_cap_tsc;
}

static void note_iter(struct pvagent *a, uint64_t t)
{
	if (t > a->iter_max_cur)
		a->iter_max_cur = t;
	if (++a->iter_count < ITER_WINDOW)
		return;
	a->iter_max_prev = a->iter_max_cur;
	a->iter_max_cur = 0;
	a->iter_count = 0;
	AGENT_SET(a, iter_bound_ns, agent_tsc_to_ns(iter_bound(a)));
}

/* The promise added to a sleep: the floor, or the upper edge of the log2
 * bucket holding the p99.9 overshoot seen so far (up to 2x slack), or twice
 * the worst overshoot while samples are few. */
static uint64_t wake_bound(struct pvagent *a)
{
	uint64_t floor = a->opts.wake_bound_ns, ns = 0;

	if (a->wake_samples < WAKE_MIN_SAMPLES) {
		ns = 2 * __atomic_load_n(&a->st.wake_overshoot_max_ns,
					 __ATOMIC_RELAXED);
	} else {
		uint64_t need = a->wake_samples - a->wake_samples / 1000, seen = 0;

		for (uint32_t b = 0; b < PVAGENT_LAT_BUCKETS; b++) {
			seen += a->wake_hist[b];
			if (seen >= need) {
				ns = 2ull << b;
				break;
			}
		}
	}
	ns = ns > floor ? ns : floor;
	/* with the sleep (at most as long), a promise stays within the
	 * spec's one second ahead */
	ns = ns < AGENT_BOUND_CAP_NS ? ns : AGENT_BOUND_CAP_NS;
	return agent_ns_to_tsc(ns);
}

static void note_wake(struct pvagent *a, uint64_t over_tsc)
{
	uint64_t ns = agent_tsc_to_ns(over_tsc);

	a->wake_hist[agent_log2_bucket(ns)]++;
	/* halve the history now and then: a burst of contention long ago
	 * should not widen every promise for ever */
	if (++a->wake_samples >= WAKE_WINDOW) {
		a->wake_samples = 0;
		for (uint32_t b = 0; b < PVAGENT_LAT_BUCKETS; b++) {
			a->wake_hist[b] /= 2;
			a->wake_samples += a->wake_hist[b];
		}
	}
	if (ns > __atomic_load_n(&a->st.wake_overshoot_max_ns, __ATOMIC_RELAXED))
		AGENT_SET(a, wake_overshoot_max_ns, ns);
	AGENT_SET(a, wake_bound_ns, agent_tsc_to_ns(wake_bound(a)));
}

static void agent_drain_ctl(struct pvagent *a)
{
	uint64_t v;

	/* the posted flag, set before the write, is what the loop obeys */
	if (read(a->ctl_fd, &v, sizeof(v)) < 0)
		return;
}

static void sleep_until(struct pvagent *a, uint64_t wake)
{
	uint64_t t = agent_tsc(), ns;
	struct timespec ts;
	struct pollfd pfd = { .fd = a->ctl_fd, .events = POLLIN };

	/* preempted past the wake-up already: never sleep a wrapped time */
	if (t >= wake)
		return;
	ns = agent_tsc_to_ns(wake - t);
	ts.tv_sec = (time_t)(ns / 1000000000ull);
	ts.tv_nsec = (long)(ns % 1000000000ull);
	AGENT_ADD(a, sleeps, 1);
	for (uint32_t k = 0; k < a->nareas; k++)
		a->areas[k].reads_awake = 0;
	if (ppoll(&pfd, 1, &ts, NULL) != 0) {
		agent_drain_ctl(a); /* a command: not a timed wake-up */
		return;
	}
	t = agent_tsc();
	note_wake(a, t > wake ? t - wake : 0);
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

static void iterate(struct pvagent *a)
{
	uint64_t now = agent_tsc(), wake, end;

	if (a->promised_host && now > a->promised_host)
		AGENT_ADD(a, promises_late, 1);
	wake = wake_time(a, now);
	publish(a, wake ? wake + wake_bound(a) : now + iter_bound(a), now);
	agent_pending_pass(a, false);
	agent_fire_due(a);
	end = agent_tsc();
	note_iter(a, end - now);
	if (!wake) {
		__builtin_ia32_pause();
		return;
	}
	/* the pass may have brought a nearer deadline: wake earlier, which
	 * keeps the promise */
	now = wake_time(a, end);
	if (!now)
		return;
	if (now < wake)
		wake = now;
	if (wake > end)
		sleep_until(a, wake);
}

void agent_engine_activate(struct pvagent *a)
{
	uint64_t now = agent_tsc(), promise = now + iter_bound(a);

	for (uint32_t k = 0; k < a->nareas; k++)
		pvtimer_host_activate(a->areas[k].pa,
				      to_guest(&a->areas[k], promise),
				      to_guest(&a->areas[k], now));
	a->promised_host = promise;
}

/* Stop or pause: no promise from here on; one more pass catches arms made
 * before the guests could see it; what is not due yet goes back. */
void agent_engine_quiesce(struct pvagent *a)
{
	struct agent_slot *s;

	for (uint32_t k = 0; k < a->nareas; k++)
		pvtimer_host_deactivate(a->areas[k].pa);
	a->promised_host = 0;
	agent_pending_pass(a, true);
	agent_fire_due(a);
	while ((s = agent_heap_top(&a->heap)))
		handback(a, s, s->gen);
	agent_flush_shots(a);
}

void agent_engine_bind(struct pvagent *a, uint32_t area, uint32_t slot,
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
void agent_engine_detach(struct pvagent *a, uint32_t area, uint32_t slot,
			 bool live)
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
					    to_guest(ar, agent_tsc()), &snap);
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

void *agent_engine_main(void *arg)
{
	struct pvagent *a = arg;
	struct timespec ts;

	/* the default 50 us slack would be added to every sleep */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	agent_engine_activate(a);
	while (!a->quit) {
		if (__atomic_load_n(&a->cmd_pending, __ATOMIC_ACQUIRE)) {
			agent_engine_take_cmd(a);
			continue;
		}
		if (a->paused) {
			struct pollfd pfd = { .fd = a->ctl_fd, .events = POLLIN };

			if (poll(&pfd, 1, -1) > 0)
				agent_drain_ctl(a);
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
