/* SPDX-License-Identifier: MIT */
/* Shared state of the agent-pass fuzz target: the harness thread (guest
 * side, fuzz_agent_pass.c) and the recording injector that runs on the
 * agent's thread (agent_pass_check.c). Everything both threads touch is
 * accessed with atomics, so the replay runs clean under TSan too. */
#ifndef FUZZ_AGENT_PASS_H
#define FUZZ_AGENT_PASS_H

#include <stdint.h>

#include "exitless/agent.h"

#define FZ_MAX_SLOTS 130u /* past one pending word: two-level bitmap */
#define FZ_KNOWN 16u      /* structured arms remembered per slot */

#define FZ_MUST(cond)                                                       \
	do {                                                                \
		if (!(cond))                                                \
			__builtin_trap();                                   \
	} while (0)

/* One arm the harness wrote through the guest helpers: (gen, deadline). */
struct fz_known {
	uint32_t gen;
	uint32_t valid;
	uint64_t deadline;
};

struct fz_slot {
	int bound;            /* set before bind, cleared after detach returns */
	int tainted;          /* raw bytes hit its guest line: no fire checks */
	uint32_t known_next;  /* ring index into known[] (harness only) */
	struct fz_known known[FZ_KNOWN];
	uint64_t last_fired_word; /* status of the last successful fire shot */
};

struct fz_state {
	struct pvtimer_area *area;
	uint8_t *mem;
	uint32_t nslots;
	uint32_t area_id;
	uint32_t slots_offset;  /* as the library laid it out */
	uint8_t vector_min, vector_max;
	int wild;              /* raw writes may hit host lines: no status checks */
	int fired_tsc;         /* PVTIMER_F_FIRED_TSC negotiated */
	int64_t tsc_offset;    /* guest TSC = host TSC + offset */
	/* written by the harness, read by the injector */
	uint32_t fail_pattern; /* bit i: fail the i-th call (rotating) */
	uint64_t stall_tsc;    /* block inside the next call this long */
	/* written by the injector */
	uint64_t calls, failures, fires_checked, early, doubles;
	struct fz_slot slot[FZ_MAX_SLOTS];
};

extern struct fz_state fz;

uint64_t fz_guest_tsc(void);
/* The callback injector: records, checks, sometimes fails or stalls. */
int fz_inject(void *ctx, uint32_t area_id, uint32_t slot, uint8_t vector);
/* Remember a structured arm of @slot before it becomes visible. */
void fz_note_arm(uint32_t slot, uint32_t gen, uint64_t deadline);
/* After the agent stopped: its statistics against what the injector saw. */
void fz_check_stats(struct pvagent *ag);

#endif
