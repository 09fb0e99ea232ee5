/* SPDX-License-Identifier: MIT */
/* Randomized soak of the whole timer path: simulated vCPUs using the guest
 * helpers (soak_vcpu.c) against a real libagent thread with a callback
 * injector that fails and stalls, driven by a VMM thread that pauses,
 * stops, detaches and rebinds (soak_host.c). Shared state between the
 * threads is accessed with atomics only (the soak runs under TSan too). */
#ifndef EXITLESS_SOAK_H
#define EXITLESS_SOAK_H

#include <pthread.h>
#include <stdint.h>

#include "exitless/agent.h"
#include "exitless/pvtimer.h"
#include "exitless/pvtimer_guest.h"

#define SOAK_VCPUS 3u
#define SOAK_VECTOR 0xecu
#define SOAK_KNOWN 64u /* arms remembered per slot for the injector */

/* How a deadline reached the guest's timer code. */
enum soak_path {
	PATH_PV,        /* pv interrupt, classified EXPIRED */
	PATH_FALLBACK,  /* hardware timer programmed by the arm's rule */
	PATH_HALT,      /* hardware timer: before_halt said the host let go */
	PATH_FIRED,     /* hardware timer: FIRED seen, interrupt not (lost) */
	PATH_HANDBACK,  /* hardware timer after a handback interrupt */
	PATH_REJECT,    /* hardware timer after a reject wake */
	PATH_EARLY,     /* hardware timer after a FIRED-before-deadline */
	PATH_BACKSTOP,  /* the liveness backstop found it due */
	PATH_HWCHECK,   /* hardware timer: on_hw_timer said the host let go */
	PATH_COUNT
};

struct soak_known {
	uint32_t gen;
	uint32_t valid;
	uint64_t deadline;
};

struct soak_vcpu {
	uint32_t slot;
	struct pvtimer_guest g;
	int irr; /* latched pv interrupt, set by the injector */
	/* the simulated hardware (TSC-deadline) timer */
	int hw_on;
	uint64_t hw_at;
	enum soak_path hw_why;
	/* the guest's one logical timer */
	int live;
	uint64_t deadline;
	/* arms as written, for the injector's checks (atomics) */
	struct soak_known known[SOAK_KNOWN];
	uint32_t known_next;
	uint32_t last_fired_gen; /* injector: last fire shot that succeeded */
	int fired_any;
	/* counters (this vCPU's thread only, read after join) */
	uint64_t ops, arms, cancels, halts, superseded, spurious;
	uint64_t delivered[PATH_COUNT];
	uint64_t late_max_path[PATH_COUNT];
	uint64_t early, doubles, bad_decisions, lost, late_max, late_sum;
	uint64_t decisions[9];
	uint64_t rng;
	long ops_target;
	pthread_t thread;
};

struct soak_host_counts {
	uint64_t pauses, stops, recreates, detaches, stalls, fail_phases;
	uint64_t calls, failures, bad_shots, early_fires, double_fires;
	uint64_t fires_checked;
};

struct soak {
	struct pvtimer_area *area;
	struct pvagent *agent;
	uint32_t area_id;
	uint64_t tpu;         /* TSC ticks per microsecond */
	uint64_t backstop;    /* B, ticks */
	uint64_t stall_tsc;   /* how long a stalled callback blocks */
	int64_t skew_tsc;     /* how far ahead a skewed host clock runs */
	int stall_next;       /* block inside the next callback */
	uint32_t fail_permille;
	int bound[SOAK_VCPUS];
	int vcpus_done;
	struct soak_vcpu vcpu[SOAK_VCPUS];
	struct soak_host_counts host;
	uint64_t agent_fires, agent_handbacks, agent_inject_errors;
};

extern struct soak soak;

void *soak_vcpu_main(void *arg);
void *soak_vmm_main(void *arg);
int soak_inject(void *ctx, uint32_t area_id, uint32_t slot, uint8_t vector);
/* Create the agent, attach the area (its clock @skew_tsc ahead of the
 * guest's), bind every slot, start. */
int soak_agent_up(uint32_t mode, int64_t skew_tsc);
/* Stop and destroy it, adding its statistics to the totals. */
void soak_agent_down(void);

#endif
