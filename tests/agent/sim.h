/* SPDX-License-Identifier: MIT */
/* Test helpers: areas, simulated vCPUs that follow the fallback rule, and
 * a "hardware timer" that is a plain sleep. */
#ifndef AGENT_TEST_SIM_H
#define AGENT_TEST_SIM_H

#include <exitless/agent.h>
#include <exitless/pvtimer.h>
#include <exitless/pvtimer_guest.h>
#include <stdint.h>

uint64_t sim_tsc(void);
uint64_t sim_ns_to_tsc(uint64_t ns);
uint64_t sim_tsc_to_ns(uint64_t tsc);
void sim_sleep_ns(uint64_t ns);
/* Sleep until guest TSC @p tsc: what a hardware timer would do. */
void sim_hw_wait(uint64_t tsc);
/* Arm on the pv path, retrying while the agent is late on its promise;
 * returns the last decision (PVTIMER_GUEST_PV once it holds). */
int sim_arm_pv(struct pvtimer_guest *g, uint64_t deadline);
/* Arm on the pv path @p ahead_ns from now, each retry with a deadline
 * that far from its own now (so a starved agent delays the arm but never
 * makes it too late); returns the deadline held, 0 if none was in 2000
 * tries. */
uint64_t sim_arm_pv_ahead(struct pvtimer_guest *g, uint64_t ahead_ns);

/* An area of @p slots slots, margin 5 us, horizon 1 s. */
struct pvtimer_area *sim_area(uint32_t slots);
/* The same with horizon @p horizon_ns and accepted vectors vmin..vmax
 * (0: the defaults). */
struct pvtimer_area *sim_area_ex(uint32_t slots, uint64_t horizon_ns,
				 uint8_t vmin, uint8_t vmax);

/* What a guest that ignores the helpers can write: slot @p slot's line
 * (gen, deadline, vector, flags) under its seqlock, then its pending bit. */
void sim_raw_publish(struct pvtimer_area *area, uint32_t slot, uint32_t gen,
		     uint64_t deadline, uint8_t vector, uint8_t flags);
/* Set slot @p slot's pending bit (and summary bit) only. */
void sim_raw_pending(struct pvtimer_area *area, uint32_t slot);
/* Leave slot @p slot's seqlock odd (a guest stuck mid-write). */
void sim_raw_hold_odd(struct pvtimer_area *area, uint32_t slot);
/* The status word the host last wrote for slot @p slot. */
uint64_t sim_status(struct pvtimer_area *area, uint32_t slot);

/* One simulated vCPU: its guest state and the eventfd standing in for its
 * irqfd. */
struct sim_vcpu {
	struct pvtimer_guest g;
	int efd;
	uint64_t pv_fires;   /* delivered by the agent at the deadline */
	uint64_t fallbacks;  /* the rule said hardware at arm time */
	uint64_t handbacks;  /* the agent gave it back: hardware */
	uint64_t late_halts; /* before_halt said hardware */
	uint64_t early;      /* an EXPIRED before the deadline (never) */
	uint64_t lost;       /* nothing came within the lost timeout */
	uint64_t late_max_ns;
};

int sim_vcpu_init(struct sim_vcpu *v, struct pvtimer_area *area, uint32_t slot);
void sim_vcpu_fini(struct sim_vcpu *v);
/* The injector for pvagent_bind_slot(): irqfd = the vCPU's eventfd. */
struct pvagent_injector sim_vcpu_injector(const struct sim_vcpu *v);
/* Arm a timer for @p deadline and wait for it the way a guest would. */
void sim_vcpu_timer(struct sim_vcpu *v, uint64_t deadline);

#endif
