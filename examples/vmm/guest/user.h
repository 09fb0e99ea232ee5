/* SPDX-License-Identifier: MIT */
/* Ring 3 of the guest payload, shared by its workloads (guest.c: timers,
 * pingpong.c: request/completion): the ud2 trap into ring 0, the TSC, and
 * acquire loads of what the interrupt stubs write. Freestanding. */
#ifndef EXITLESS_VMM_GUEST_USER_H
#define EXITLESS_VMM_GUEST_USER_H

#include <stdint.h>

#include "../vmm_abi.h"

static inline uint64_t trap(uint64_t nr, uint64_t arg)
{
	uint64_t ret;

	__asm__ volatile("ud2" : "=a"(ret) : "a"(nr), "D"(arg) : "memory", "cc");
	return ret;
}

/* Port writes are rare (console, phase markers), so a trap each is fine. */
static inline void outl(uint16_t port, uint32_t v)
{
	trap(VMM_TRAP_OUT, ((uint64_t)port << 32) | v);
}

static inline uint64_t rdtsc(void)
{
	return __builtin_ia32_rdtsc();
}

static inline uint64_t rd(volatile uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* pingpong.c: the whole pingpong workload of vCPU 0; 0 on success. */
int run_pingpong(volatile struct vmm_mailbox *mb,
		 volatile struct vmm_percpu *pc);

#endif /* EXITLESS_VMM_GUEST_USER_H */
