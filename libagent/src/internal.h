/* SPDX-License-Identifier: MIT */
/* Private state of an agent. Fields marked (engine) are touched only by the
 * agent thread while it runs, and by API calls under agent.lock while it
 * does not; commands (mailbox.c carries them, control.c runs them) hand
 * them over between the two. */
#ifndef AGENT_INTERNAL_H
#define AGENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent-config.h"
#include "clock.h"
#include "exitless/agent.h"
#include "mailbox.h"
#include "promise.h"

#define AGENT_HEAP_NONE UINT32_MAX
/* No bound added to a promise, and no sleep, is longer than this: a
 * promise is at most one second ahead (spec §5). */
#define AGENT_BOUND_CAP_NS 500000000ull

#define AGENT_PARK_NONE UINT32_MAX

struct agent_slot {
	struct pvagent_injector inj;
	uint64_t deadline_host; /* heap key: held deadline, host TSC, or the
				 * time it was read if that was later */
	uint64_t due_host;      /* max(deadline, first read): for lateness */
	uint64_t backoff_until; /* parked until then (host TSC) */
	uint32_t gen;           /* held generation */
	uint32_t seen_gen;      /* generation of the last read */
	uint32_t heap_idx;      /* index in the heap or AGENT_HEAP_NONE */
	uint32_t parked_idx;    /* index in agent.parked or AGENT_PARK_NONE */
	uint32_t owed_pass;     /* pass during which it was parked */
	uint32_t area;
	uint32_t index;
	uint8_t vector;
	uint8_t bound;
	uint8_t held;
	uint8_t seen_cancel;    /* the last read was a cancel of seen_gen */
	uint8_t strikes;        /* consecutive bad reads */
	uint8_t backoff_level;  /* parking time = base << level, capped */
	uint8_t withdrawn;      /* slot sync NEVER (parked) */
	uint8_t owed;           /* parked: one read owed after withdrawal */
	uint8_t ring_ok;        /* irqfd opened O_NONBLOCK: its io_uring
				 * write completes inline, so it may batch */
};

struct agent_area {
	struct pvtimer_area *pa;
	struct pvtimer_tsc_map map;
	uint8_t unscaled; /* map.mult 1, shift 0: conversion is the offset */
	uint32_t nslots;
	struct agent_slot *slots;
	uint64_t *todo;  /* (engine) bits taken from the guest, not yet read */
	uint64_t *taken; /* (engine) one pass's take, before it joins todo */
	uint32_t cursor; /* (engine) where the next pass starts reading */
	uint32_t reads_awake; /* (engine) reads since the agent last slept */
};

/* Host <-> guest TSC of an area, as pvtimer_tsc_to_guest()/_to_host():
 * with equal rates (KVM's default, and the identity map) only the offset,
 * added here rather than across a library call per slot read. */
static inline uint64_t agent_to_guest(const struct agent_area *ar,
				      uint64_t host)
{
	return ar->unscaled ? host + (uint64_t)ar->map.offset
			    : pvtimer_tsc_to_guest(&ar->map, host);
}

static inline uint64_t agent_to_host(const struct agent_area *ar,
				     uint64_t guest)
{
	return ar->unscaled ? guest - (uint64_t)ar->map.offset
			    : pvtimer_tsc_to_host(&ar->map, guest);
}

/* Min-heap of held deadlines, keyed by host TSC; each entry knows its slot
 * and each slot its entry, so re-arm and cancel are O(log n). */
struct agent_heap {
	struct agent_slot **v;
	uint32_t n;
	uint32_t cap;
};

int agent_heap_reserve(struct agent_heap *h, uint32_t cap);
void agent_heap_free(struct agent_heap *h);
void agent_heap_set(struct agent_heap *h, struct agent_slot *s, uint64_t key);
void agent_heap_remove(struct agent_heap *h, struct agent_slot *s);
static inline struct agent_slot *agent_heap_top(const struct agent_heap *h)
{
	return h->n ? h->v[0] : NULL;
}

/* One injection queued in a pass; flushed together (inject.c). */
struct agent_shot {
	const struct pvagent_injector *inj;
	uint32_t area;
	uint32_t slot;
	uint8_t vector;
	uint8_t ring_ok;
};

struct agent_uring;
int agent_uring_new(struct agent_uring **out);
/* Test seam: a ring of @entries (1..64) SQ entries. */
int agent_uring_new_sized(struct agent_uring **out, uint32_t entries);
void agent_uring_destroy(struct agent_uring *r);
/* What one agent_uring_write_ones() did: fds[0..handled) went through the
 * ring (their writes were submitted and reported, or cancelled after a
 * bounded wait: @failed of them are not known to be delivered); the caller
 * writes fds[handled..n) itself. @error != 0: the ring is unusable (it may
 * hold unsubmitted entries): destroy it before writing the rest. */
struct agent_uring_res {
	uint32_t handled;
	uint32_t failed;
	int error;
};
void agent_uring_write_ones(struct agent_uring *r, const int *fds, uint32_t n,
			    struct agent_uring_res *res);
/* The smallest batch (2..32) for which one submission costs less per shot
 * than write() on this machine, measured on private eventfds (~1 ms), or
 * PVAGENT_URING_NEVER. */
uint32_t agent_uring_calibrate(struct agent_uring *r);

enum agent_state { AGENT_STOPPED, AGENT_RUNNING, AGENT_PAUSED };

/* (engine) Where the current fire point began and how many slot reads came
 * before it, and the same of the previous one: four stores per fire
 * point, so that agent-bench's callback (on the agent thread) can tell
 * where a late fire's time went (a long gap with few reads is a stall, a
 * gap full of reads the pass, the time since the fire point began the
 * others due with it), and the time spent in passes that had work (a
 * dedicated agent's CPU per timer without its idle spinning). Not part
 * of the API. */
struct agent_diag {
	uint64_t fp_start, fp_prev_start;
	uint64_t fp_reads, fp_prev_reads;
	uint64_t busy_tsc; /* summed length of passes that read a slot */
	uint64_t takes;    /* area takes that found bits (each exchanged
			    * the summary line; an empty one only loads it) */
	uint64_t turns;    /* turns of the loop, with a pass or not */
	uint64_t turn_max_tsc; /* the longest turn since the start */
};

struct pvagent {
	struct pvagent_opts opts;
	int *vcpu_cpus;
	int cpu; /* pinned CPU or -1 */

	pthread_mutex_t lock; /* serialises the API */
	enum agent_state state;
	pthread_t thread;

	struct agent_mailbox mb; /* commands to a running thread */
	struct agent_clock clk;  /* ns <-> TSC, fixed at pvagent_new() */

	/* (engine) */
	struct agent_area *areas;
	uint32_t nareas;
	struct agent_heap heap;
	struct agent_shot *shots;
	uint8_t *shot_sent; /* per shot of a flush: the ring sent it */
	uint32_t nshots;
	uint32_t shots_cap;
	int *uring_fds;
	struct agent_uring *uring;
	bool quit;
	bool paused;
	bool todo_left;     /* the last pass left changed slots (budget) */
	bool pass_owed;     /* a command ran or the agent activated: pass on
			     * the next turn */
	/* Test and benchmark seam (white-box, set before pvagent_start()):
	 * a pass on every turn, as before issue 10's pacing, to measure what
	 * pacing saves. No embedder needs it: pacing delays only the SEEN
	 * ack (by up to b), which no guest rule waits for. */
	bool pass_every_turn;
	uint64_t pass_promise; /* T_k: the value standing at the last pass's
				* first summary access; 0: none (the next
				* pass owes no one) */
	uint32_t area_cursor;
	uint32_t pass_no;   /* pending passes, wrapping */
	struct agent_slot **parked; /* park.c; room for every slot */
	uint32_t nparked;
	uint64_t parked_min; /* earliest end of a parking, or 0 */
	uint64_t park_slack_tsc; /* parkings ending this soon end now */
	uint64_t backoff_base_tsc, backoff_max_tsc;
	struct agent_promise pr; /* bounds and the standing promise */
	struct agent_diag diag;
	uint64_t spin_thr_tsc;
	uint64_t max_sleep_tsc;

	/* Counters: single writer (AGENT_ADD), read by pvagent_get_stats()
	 * from any thread. */
	struct pvagent_stats st;
	uint64_t cpu_acc_ns; /* CPU of finished threads */
	uint64_t run_acc_ns;
	uint64_t run_start_ns;
};

/* The counters have one writer at a time: the agent thread while it runs,
 * else the API caller under agent.lock (thread creation and join order the
 * two). So an add is a relaxed load and a relaxed store, not a locked RMW:
 * pvagent_get_stats() may read a value one add old, never a torn one. */
#define AGENT_ADD(a, field, n)                                               \
	__atomic_store_n(&(a)->st.field,                                     \
			 __atomic_load_n(&(a)->st.field, __ATOMIC_RELAXED) + \
				 (n),                                        \
			 __ATOMIC_RELAXED)
#define AGENT_SET(a, field, v)                                               \
	__atomic_store_n(&(a)->st.field, (v), __ATOMIC_RELAXED)

/* pass.c */
void agent_pending_pass(struct pvagent *a, bool all);
void agent_fire_due(struct pvagent *a);
void agent_slot_drop(struct pvagent *a, struct agent_slot *s);
void agent_todo_set(struct agent_area *ar, uint32_t i);

/* park.c */
void agent_park_init(struct pvagent *a);
void agent_behave(struct pvagent *a, struct agent_area *ar, struct agent_slot *s);
void agent_misbehave(struct pvagent *a, struct agent_area *ar,
		     struct agent_slot *s, uint64_t now);
void agent_unpark_due(struct pvagent *a, bool all);
void agent_slot_reset(struct pvagent *a, struct agent_slot *s);

/* engine.c: the agent thread */
void *agent_engine_main(void *arg);

/* control.c: what commands do, on the agent thread (or on the caller's
 * while the thread is stopped) */
int agent_control_exec(struct pvagent *a, const struct agent_cmd *c);
void agent_control_activate(struct pvagent *a);
void agent_control_quiesce(struct pvagent *a);

/* inject.c */
int agent_injector_check(const struct pvagent_injector *inj);
uint8_t agent_injector_ring_ok(const struct pvagent_injector *inj);
void agent_queue_shot(struct pvagent *a, const struct agent_slot *s,
		      uint8_t vector);
void agent_flush_shots(struct pvagent *a);
/* Whether shots may share an io_uring submission (else each goes alone,
 * and waiting for the others of a fire point only delays it). */
bool agent_shots_batch(const struct pvagent *a);

/* cpu.c */
int agent_thread_attr(struct pvagent *a, pthread_attr_t *attr, bool sched);

#endif
