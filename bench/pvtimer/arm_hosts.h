/* SPDX-License-Identifier: MIT */
/* pvtimer-arm-cost: the host loops the guest's arm is measured against. */
#ifndef PVTIMER_ARM_HOSTS_H
#define PVTIMER_ARM_HOSTS_H

#include <stdint.h>

#include "exitless/pvtimer.h"

/* What the host thread does. The free-running loops service the area as
 * fast as they can (the guest arms back to back); the lockstep steps do one
 * thing between two arms, so each arm pays for exactly that. */
enum arm_host {
	HOST_OLD,          /* free-running, 1.1 agent: publish every pass,
			    * summary exchanged even when zero */
	HOST_NEW,          /* free-running, 1.2 agent: republish only when
			    * less than half the promise is left, summary
			    * loaded first, batch calls */
	HOST_PACED,        /* free-running, 1.2 agent that passes only when
			    * it renews its promise (every P/2) */
	STEP_NOTHING,      /* lockstep: the handshake alone */
	STEP_PUBLISH,      /* header line 1: next sync + heartbeat */
	STEP_SUMMARY,      /* the summary line: exchanged to 0 */
	STEP_WORD,         /* the slot's pending word: exchanged to 0 */
	STEP_READ,         /* the slot's guest line: read (seqlock) */
	STEP_ACK,          /* the slot's host line: status word written */
	STEP_PASS_OLD,     /* one 1.1 pass: publish + exchange + read + ack */
	STEP_PASS_NEW,     /* one 1.2 pass: hysteresis + batch read + ack */
	ARM_HOST_COUNT
};

struct arm_bench {
	struct pvtimer_area *area;
	uint64_t ticks_per_us;
	uint64_t promise_tsc;    /* P: how far ahead a promise is made */
	enum arm_host host;
	int run;
	uint64_t passes;         /* passes that found a pending slot */
	uint64_t publishes;
	/* lockstep handshake, each on its own lines: the host has done step
	 * i when ready == i; the guest has armed for step i when done == i */
	_Alignas(128) uint64_t ready;
	_Alignas(128) uint64_t done;
	/* free-running loops: TSC at the start of the host's latest pass, on
	 * a line of its own (not the area's): the guest arms only while the
	 * host is on its CPU, so a host thread descheduled by the shared
	 * machine does not turn "servicing" samples into idle ones */
	_Alignas(128) uint64_t alive_tsc;
	_Alignas(128) char pad;
};

/* A promise for modes whose host publishes nothing of its own: within the
 * spec's one second, renewed at half of it. Deadlines are armed further. */
#define ARM_LONG_PROMISE_US 900000ull
#define ARM_DEADLINE_US 2000000ull

/* Republish @promise as now + @distance when less than half of @distance
 * remains (the 1.2 agent's hysteresis). */
void arm_renew(struct arm_bench *b, uint64_t *promise, uint64_t distance,
	       uint64_t now);

/* The host thread's main: runs bench->host until bench->run is 0. */
void *arm_host_main(void *bench);

/* Name of a host loop, for the report. */
const char *arm_host_name(enum arm_host h);

#endif
