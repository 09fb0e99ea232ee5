/* SPDX-License-Identifier: MIT */
/* The pingpong workload, guest ring 3 of vCPU 0: post a request (one store
 * in the mailbox's request line, no exit), wait idle for the device's
 * completion interrupt, record the round trip, again. Per service time,
 * one phase per configuration; the guest only knows whether it halts at
 * once or polls first with a libidlepoll policy (the host side of each
 * configuration is the VMM's business). The round trip ends at the first
 * instruction of the completion interrupt's stub (its TSC stamp), as the
 * timer workload's lateness does. Freestanding. */
#include <stddef.h>
#include <stdint.h>

#include <exitless/idlepoll.h>

#include "user.h"

struct pp_run {
	volatile struct vmm_mailbox *mb;
	volatile struct vmm_percpu *pc;
	struct vmm_pp_counters *k;
	int64_t *out;   /* per round trip: its length (TSC) */
	int64_t *poll;  /* ... ticks polled */
	int64_t *cycle; /* ... request to the wait's end in ring 3 */
	uint64_t khz, base_tsc, seq;
	uint32_t marker; /* config | service index << 8 */
	struct idlepoll_cpu *ip; /* NULL: halt at once */
};

static uint64_t ns_since(const struct pp_run *r, uint64_t tsc)
{
	return (tsc - r->base_tsc) * 1000000ull / r->khz;
}

static void halt(struct pp_run *r, uint64_t seq)
{
	r->k->traps++;
	if (trap(VMM_TRAP_HALT, seq))
		r->k->hlt++;
}

/* One round trip; returns its length in TSC ticks (interrupt stub's stamp
 * minus the request's). @record: count it, and store its poll and cycle
 * time at index @i. */
static uint64_t round_trip(struct pp_run *r, int record, uint32_t i)
{
	uint64_t c0 = rd(&r->pc->dev_count), t0, t1, irq, poll_end, window = 0;
	int polled = 0;

	t0 = rdtsc();
	__atomic_store_n(&r->mb->req.seq, ++r->seq, __ATOMIC_RELEASE);
	if (r->ip) {
		window = idlepoll_select(r->ip, ns_since(r, t0),
					 IDLEPOLL_NO_TIMER);
		poll_end = t0 + window * r->khz / 1000000ull;
		while (!(polled = rd(&r->pc->dev_count) != c0) &&
		       rdtsc() < poll_end)
			if (idlepoll_work(r->ip) <= 0)
				__builtin_ia32_pause();
		/* CPU burned polling: up to the interrupt's arrival when the
		 * poll caught it (the stub's emulated ring 0 after that is
		 * interrupt handling, which every configuration pays) */
		t1 = polled ? rd(&r->pc->dev_tsc) : rdtsc();
		if (record) {
			r->poll[i] = (int64_t)(t1 > t0 ? t1 - t0 : 0);
			r->k->poll_tsc += (uint64_t)r->poll[i];
		}
	} else if (record) {
		r->poll[i] = 0;
	}
	/* the predictor's upkeep the poll left undone, before the halt */
	while (r->ip && rd(&r->pc->dev_count) == c0 && idlepoll_work(r->ip) > 0)
		;
	while (rd(&r->pc->dev_count) == c0) {
		/* seq first: an interrupt after this read bumps it, and the
		 * halt trap then returns at once (kernel.c) */
		uint64_t seq = rd(&r->pc->seq);

		if (rd(&r->pc->dev_count) != c0)
			break;
		halt(r, seq);
	}
	t1 = rdtsc();
	irq = rd(&r->pc->dev_tsc);
	/* The idle period ends when the completion interrupt arrives (the
	 * stub's stamp), not when ring 3 resumes: after a halt, ring 3 also
	 * waits for the emulated trap's return, and a period that long would
	 * teach the policy that halting costs nothing more than it does,
	 * so it would keep halting. */
	if (r->ip)
		idlepoll_reflect(r->ip, irq > t0 ? ns_since(r, irq) - ns_since(r, t0)
						 : 0,
				 polled);
	if (record) {
		r->k->polled += (uint64_t)polled;
		r->cycle[i] = (int64_t)(t1 - t0);
	}
	return irq - t0;
}

static int guest_policy(uint32_t cfg, uint32_t *policy)
{
	switch (cfg) {
	case VMM_PP_FIXED100: *policy = IDLEPOLL_POLICY_FIXED; return 1;
	case VMM_PP_SMART: *policy = IDLEPOLL_POLICY_SMART; return 1;
	case VMM_PP_HALTPOLL: *policy = IDLEPOLL_POLICY_HALTPOLL; return 1;
	default: return 0; /* halt; the host decides the rest */
	}
}

static int run_config(struct pp_run *r, uint32_t cfg)
{
	/* fresh policy state per phase: no configuration learns from another */
	static unsigned char ipmem[16384] __attribute__((aligned(64)));
	uint32_t policy, n = r->mb->pp_rounds, warm = r->mb->pp_warmup;
	uint64_t start;

	r->ip = NULL;
	if (guest_policy(cfg, &policy)) {
		IDLEPOLL_OPTS(o, .policy = policy,
			      .halt_cost_ns = r->mb->halt_cost_ns);

		if (idlepoll_cpu_size() > sizeof(ipmem) ||
		    idlepoll_cpu_align() > 64 ||
		    idlepoll_cpu_init(ipmem, sizeof(ipmem), &o, &r->ip))
			return -1;
		/* the talk's "poll=100000ns"; fixed's default, said here */
		if (policy == IDLEPOLL_POLICY_FIXED &&
		    idlepoll_set_param(r->ip, "window_ns", 100000))
			return -1;
	}
	r->base_tsc = rdtsc();
	for (uint32_t i = 0; i < warm; i++)
		round_trip(r, 0, 0);
	/* the VMM reads KVM's counters here: they then hold only the
	 * recorded round trips (a trap or two, against thousands) */
	outl(VMM_PORT_PP_PHASE, VMM_PP_RECORD | r->marker);
	start = rdtsc();
	for (uint32_t i = 0; i < n; i++) {
		r->out[i] = (int64_t)round_trip(r, 1, i);
		r->k->rounds++;
	}
	r->k->run_tsc = rdtsc() - start;
	return 0;
}

int run_pingpong(volatile struct vmm_mailbox *mb,
		 volatile struct vmm_percpu *pc)
{
	struct pp_run r = { .mb = mb, .pc = pc, .khz = mb->tsc_khz };

	if (!mb->pp_services || mb->pp_services > VMM_PP_SVC_MAX ||
	    mb->pp_rounds > mb->samples_max)
		return -1;
	for (uint32_t svc = 0; svc < mb->pp_services; svc++) {
		for (uint32_t cfg = 0; cfg < VMM_PP_CFGS; cfg++) {
			uint32_t marker = cfg | svc << 8;
			int rc = 0;

			r.marker = marker;
			if (!(mb->pp_configs & (1u << cfg)))
				continue;
			r.k = (struct vmm_pp_counters *)&mb->pp[svc][cfg];
			/* three arrays per row: round trip, poll, cycle */
			r.out = (int64_t *)(uintptr_t)(
				mb->samples_gpa + 8ull * mb->samples_max * 3 *
							  (svc * VMM_PP_CFGS + cfg));
			r.poll = r.out + mb->samples_max;
			r.cycle = r.poll + mb->samples_max;
			outl(VMM_PORT_PP_PHASE, VMM_PHASE_BEGIN | marker);
			/* the VMM set pp_skip during that port write */
			if (__atomic_load_n(&mb->pp_skip, __ATOMIC_ACQUIRE))
				r.k->skipped = 1;
			else
				rc = run_config(&r, cfg);
			outl(VMM_PORT_PP_PHASE, VMM_PHASE_END | marker);
			if (rc)
				return rc;
		}
	}
	return 0;
}
