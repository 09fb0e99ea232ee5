/* SPDX-License-Identifier: MIT */
/* The guest payload of exitless-vmm, ring 3: its ring 0 (kernel.c) only
 * installs an IDT and performs privileged operations on request, and ring 3
 * runs the timer workload in two configurations:
 *
 *  plain:    arm the LAPIC TSC-deadline timer and hlt, both through a ud2
 *            trap (ring 3 cannot wrmsr or hlt);
 *  exitless: arm the pvtimer slot with pvtimer_guest_arm() (plain stores in
 *            user-mapped memory, no exit), poll for the window libidlepoll
 *            chooses, then halt through the trap; LAPIC timer only when the
 *            fallback rule says so.
 *
 * Ring 0 is emulated on this KVM (~1 us per instruction), so it does as
 * little as possible; ring 3 runs natively. Freestanding: no libc. */
#include <stddef.h>
#include <stdint.h>

#include <exitless/idlepoll.h>
#include <exitless/pvtimer_guest.h>

#include "user.h"

/* Ring 3 entry, called from entry.S after kmain. */
void umain(uint64_t id);

static void puts_(const char *s)
{
	while (*s)
		outl(VMM_PORT_CONSOLE, (uint8_t)*s++);
}

static void putu(uint64_t v)
{
	char b[24];
	int i = 23;

	b[i] = 0;
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_(b + i);
}

static void done(uint32_t code)
{
	outl(VMM_PORT_DONE, code);
	for (;;) /* the VMM never resumes us after DONE */
		__builtin_ia32_pause();
}

struct run {
	volatile struct vmm_mailbox *mb;
	volatile struct vmm_percpu *pc; /* this vCPU's interrupt counters */
	struct vmm_counters *k;
	int64_t *out;
	uint64_t rng;
	uint64_t khz;
	uint64_t base_tsc;
	uint64_t min_tsc, span_tsc;
	int kvm_pv_eoi; /* KVM's CPUID offers PV EOI to this vCPU */
};

static uint64_t next_rand(struct run *r)
{
	/* xorshift64*: good enough for deadlines, no division or FP */
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return r->rng * 0x2545f4914f6cdd1dull;
}

static uint64_t rand_delta(struct run *r)
{
	return r->min_tsc + (r->span_tsc ? next_rand(r) % r->span_tsc : 0);
}

/* ns since the phase began: relative, so tsc*1e6 cannot overflow. */
static uint64_t tsc_ns(const struct run *r, uint64_t tsc)
{
	return (tsc - r->base_tsc) * 1000000ull / r->khz;
}

static void arm_lapic(struct run *r, uint64_t deadline)
{
	r->k->tsc_wrmsr++;
	r->k->traps++;
	trap(VMM_TRAP_TSC_DEADLINE, deadline);
}

static void cancel_lapic(struct run *r)
{
	r->k->lapic_cancels++;
	arm_lapic(r, 0);
}

static void halt(struct run *r, uint64_t seq)
{
	r->k->traps++;
	if (trap(VMM_TRAP_HALT, seq))
		r->k->hlt++;
}

static void phase(uint32_t cfg, uint32_t what)
{
	outl(VMM_PORT_PHASE, what | cfg);
}

/* All vCPUs meet here (ring 3 spin, no exit), so that they run each
 * configuration at the same time and the VMM's counters per phase hold
 * only that phase. Point k is used once. */
static void rendezvous(struct run *r, uint32_t k)
{
	uint32_t *b = (uint32_t *)&r->mb->barrier[k];

	__atomic_add_fetch(b, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(b, __ATOMIC_ACQUIRE) < r->mb->vcpus)
		__builtin_ia32_pause();
}

static void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c,
		  uint32_t *d)
{
	uint64_t lo, hi;

	__asm__ volatile("ud2"
			 : "=a"(lo), "=d"(hi)
			 : "a"((uint64_t)VMM_TRAP_CPUID), "D"((uint64_t)leaf)
			 : "memory", "cc");
	*a = (uint32_t)lo;
	*b = (uint32_t)(lo >> 32);
	*c = (uint32_t)hi;
	*d = (uint32_t)(hi >> 32);
}

/* KVM's own leaves: the signature at 0x40000000 + 0x100 k, features in
 * the next leaf (Linux's kvm_cpuid_base() scans the same way). */
static int kvm_offers_pv_eoi(void)
{
	for (uint32_t k = 0; k < 256; k++) {
		uint32_t leaf = 0x40000000u + 0x100u * k, a, b, c, d;

		cpuid(leaf, &a, &b, &c, &d);
		if (b != VMM_KVM_CPUID_SIG_EBX || c != VMM_KVM_CPUID_SIG_ECX ||
		    d != VMM_KVM_CPUID_SIG_EDX)
			continue;
		if (a < leaf + 1)
			return 0;
		cpuid(leaf + 1, &a, &b, &c, &d);
		return (a >> VMM_KVM_FEATURE_PV_EOI) & 1;
	}
	return 0;
}

/* PV EOI for one configuration, if the VMM asks for it there and KVM's
 * CPUID offers it; the stubs honour the word only while the MSR points at
 * it. On from the phase's BEGIN marker to just after its END marker, so
 * that the VMM reads the MSR as the guest set it. @return 1 if on. */
static int pv_eoi_begin(struct run *r, uint32_t cfg)
{
	if (!r->kvm_pv_eoi || !(r->mb->pv_eoi_cfgs & (1u << cfg)))
		return 0;
	r->k->traps++;
	trap(VMM_TRAP_PV_EOI, 1);
	r->k->pv_eoi = 1;
	return 1;
}

static void pv_eoi_end(struct run *r, int on)
{
	if (!on)
		return;
	r->k->traps++;
	trap(VMM_TRAP_PV_EOI, 0);
}

/* Interrupts taken since the snapshot, split into EOI writes and EOIs PV
 * EOI let the stubs skip. */
struct eoi_snap {
	uint64_t irqs, skipped;
};

static struct eoi_snap eoi_snap(const struct run *r)
{
	struct eoi_snap s = {
		.irqs = rd(&r->pc->lapic_count) + rd(&r->pc->pv_count),
		.skipped = rd(&r->pc->eoi_skipped),
	};
	return s;
}

static void eoi_account(struct run *r, struct eoi_snap s0)
{
	struct eoi_snap s1 = eoi_snap(r);

	r->k->eoi_skipped = s1.skipped - s0.skipped;
	r->k->eoi_wrmsr = (s1.irqs - s0.irqs) - r->k->eoi_skipped;
}

static void run_plain(struct run *r)
{
	uint32_t n = r->mb->timers;
	struct eoi_snap e0 = eoi_snap(r);

	for (uint32_t i = 0; i < n; i++) {
		uint64_t delta = rand_delta(r);
		uint64_t lapic0 = rd(&r->pc->lapic_count);
		uint64_t deadline = rdtsc() + delta;

		arm_lapic(r, deadline);
		for (;;) {
			uint64_t seq = rd(&r->pc->seq);

			if (rd(&r->pc->lapic_count) != lapic0)
				break;
			halt(r, seq);
		}
		r->out[i] = (int64_t)(rd(&r->pc->lapic_tsc) - deadline);
		r->k->fallbacks++; /* every timer is a hardware timer here */
		r->k->lapic_fired++;
		r->k->timers++;
	}
	eoi_account(r, e0);
}

/* CPUID discovery, docs/pvtimer-abi.md §8. */
static int discover(uint64_t *gpa, uint32_t *slot, uint32_t *pages)
{
	for (uint32_t k = 0; k < 256; k++) {
		uint32_t leaf = 0x40000000u + 0x100u * k, a, b, c, d;

		cpuid(leaf, &a, &b, &c, &d);
		if (b != PVTIMER_CPUID_SIG_EBX || c != PVTIMER_CPUID_SIG_ECX ||
		    d != PVTIMER_CPUID_SIG_EDX)
			continue;
		if (a < leaf + PVTIMER_CPUID_AREA_LEAF_OFFSET)
			return -1;
		cpuid(leaf + PVTIMER_CPUID_AREA_LEAF_OFFSET, &a, &b, &c, &d);
		*gpa = ((uint64_t)b << 32) | (a & ~0xfffu);
		*slot = c;
		*pages = d;
		return 0;
	}
	return -1;
}

struct pv_wait {
	struct pvtimer_guest *g;
	uint64_t deadline;
	uint64_t lapic0, pv_seen;
	int hw; /* the LAPIC timer holds the deadline */
	int backstop; /* the liveness backstop is on (--backstop-us) */
};

static void fall_back(struct run *r, struct pv_wait *w, int reason)
{
	r->k->fallbacks++;
	r->k->reasons[reason < VMM_REASONS ? reason : 0]++;
	arm_lapic(r, w->deadline);
	w->hw = 1;
}

/* The pvtimer path holds the deadline; the LAPIC timer only backs it up
 * (ABI §4, liveness rule): program it where the helpers say. */
static void arm_backstop(struct run *r, struct pv_wait *w)
{
	r->k->backstop_arms++;
	arm_lapic(r, pvtimer_guest_hw_deadline(w->g));
}

/* A LAPIC interrupt ends the timer only at or after its deadline: one that
 * came earlier was a backstop (or an older deadline) the new programming
 * raced with. */
static int lapic_due(struct run *r, const struct pv_wait *w)
{
	return (int64_t)(rd(&r->pc->lapic_tsc) - w->deadline) >= 0;
}

/* With the backstop on, every LAPIC interrupt goes through the helpers:
 * it may be the backstop (re-arm it, or fall back if the host stopped
 * keeping its promise), the deadline delivered by the backstop because the
 * host never did, or a stale one. @return 1 when it ended this timer. */
static int backstop_irq(struct run *r, struct pv_wait *w)
{
	int armed = pvtimer_guest_pv_deadline(w->g) != 0, rc;

	r->k->backstop_irqs++;
	rc = pvtimer_guest_on_hw_timer(w->g);
	if (w->hw)
		return lapic_due(r, w); /* the LAPIC holds this timer */
	if (rc == PVTIMER_GUEST_HW_EXPIRED) {
		if (!armed)
			return 0;
		if (lapic_due(r, w)) {
			r->k->backstop_fired++; /* the host never delivered it */
			return 1;
		}
		/* a backstop that expired just before D, seen after it: the
		 * LAPIC at D (already due) delivers it, measured honestly */
		fall_back(r, w, PVTIMER_GUEST_FALLBACK_PAST);
		return 0;
	}
	if (rc == PVTIMER_GUEST_BACKSTOP)
		arm_backstop(r, w);
	else if (rc > 0)
		fall_back(r, w, rc);
	return 0;
}

/* 0: still waiting; 1: the LAPIC timer fired; 2: the pvtimer fired. */
static int pv_check(struct run *r, struct pv_wait *w)
{
	uint64_t pv, lapic = rd(&r->pc->lapic_count);

	if (w->backstop && lapic != w->lapic0) {
		w->lapic0 = lapic;
		if (backstop_irq(r, w))
			return 1;
	} else if (w->hw && lapic != w->lapic0) {
		return 1;
	}
	pv = rd(&r->pc->pv_count);
	if (pv == w->pv_seen)
		return 0;
	w->pv_seen = pv;
	switch (pvtimer_guest_on_interrupt(w->g)) {
	case PVTIMER_GUEST_IRQ_EXPIRED:
		return 2;
	case PVTIMER_GUEST_IRQ_HANDBACK:
		/* handed back or rejected: the helper withdrew the pv arm;
		 * the LAPIC takes the deadline (pvtimer_guest_hw_deadline) */
		r->k->handbacks++;
		fall_back(r, w, PVTIMER_GUEST_FALLBACK_REJECTED);
		return 0;
	case PVTIMER_GUEST_IRQ_EARLY:
		/* fired before the deadline: wait for the rest in hardware */
		fall_back(r, w, PVTIMER_GUEST_FALLBACK_FIRED);
		return 0;
	default:
		r->k->spurious++;
		return 0;
	}
}

/* The wait is known to end at the deadline (the interrupt comes then, or
 * up to the slack later). When that is closer than H, or than the
 * policy's own window, polling the whole wait costs less than halting
 * (idlepoll's cost model: d polled against window + H), whatever the
 * policy predicted from past waits, which cannot see the deadline: poll
 * until deadline + slack. If the interrupt is later still, the halt path
 * below runs as usual (its pre-halt check falls back to the LAPIC if the
 * host stopped), so this never waits unboundedly. @return the poll's end. */
static uint64_t poll_to_deadline(struct run *r, struct pv_wait *w,
				 uint64_t t0, uint64_t window_ns,
				 uint64_t poll_end)
{
	uint64_t d_ns, until;

	if (!r->mb->deadline_poll)
		return poll_end;
	d_ns = (int64_t)(w->deadline - t0) > 0 ?
		       tsc_ns(r, w->deadline) - tsc_ns(r, t0) : 0;
	if (d_ns > r->mb->halt_cost_ns && d_ns > window_ns)
		return poll_end;
	r->k->deadline_polls++;
	until = w->deadline + r->mb->poll_slack_ns * r->khz / 1000000ull;
	return (int64_t)(until - poll_end) > 0 ? until : poll_end;
}

static int run_exitless(struct run *r, uint32_t slot_want)
{
	/* idlepoll state is per CPU: one buffer per vCPU. (One shared buffer
	 * let a late vCPU's idlepoll_cpu_init() zero the state, policy
	 * included, under the other vCPU's idlepoll_select(), which then
	 * called through policies[0] == NULL.) */
	static unsigned char ipmem[VMM_VCPUS_MAX][16384]
		__attribute__((aligned(64)));
	struct pvtimer_guest g;
	struct idlepoll_cpu *ip;
	uint32_t n = r->mb->timers, slot, pages;
	uint64_t gpa;
	struct eoi_snap e0;
	int rc;

	/* the slot index comes from this vCPU's own CPUID (KVM_SET_CPUID2
	 * is per vCPU); it must be the one the VMM bound for us */
	if (discover(&gpa, &slot, &pages) || slot != slot_want) {
		puts_("guest: no pvtimer area in CPUID\n");
		return -1;
	}
	rc = pvtimer_guest_init(&g, (void *)(uintptr_t)gpa,
				(size_t)pages * PVTIMER_ABI_PAGE_SIZE, slot,
				VMM_VEC_PVTIMER);
	if (rc) {
		puts_("guest: pvtimer_guest_init failed\n");
		return -1;
	}
	{
		IDLEPOLL_OPTS(o, .policy = r->mb->idle_policy,
			      .halt_cost_ns = r->mb->halt_cost_ns);

		if (idlepoll_cpu_size() > sizeof(ipmem[0]) ||
		    idlepoll_cpu_align() > 64 || slot >= VMM_VCPUS_MAX)
			rc = -1; /* grow ipmem */
		else
			rc = idlepoll_cpu_init(ipmem[slot], sizeof(ipmem[0]),
					       &o, &ip);
		if (rc) {
			puts_("guest: idlepoll_cpu_init failed: ");
			putu((uint64_t)-rc);
			puts_(" ");
			putu(idlepoll_cpu_size());
			puts_("\n");
			return -1;
		}
	}

	/* The VMM starts the agent at our phase marker; its thread may take a
	 * moment to publish ACTIVE. Arms before that fall back correctly, but
	 * would measure start-up, not the steady state: wait up to 100 ms. */
	{
		uint64_t until = rdtsc() + 100 * r->khz;

		while (!(__atomic_load_n(&g.hdr->host_flags, __ATOMIC_ACQUIRE) &
			 PVTIMER_HOST_ACTIVE) &&
		       rdtsc() < until)
			__builtin_ia32_pause();
	}
	e0 = eoi_snap(r);
	pvtimer_guest_set_backstop(&g, (uint64_t)r->mb->backstop_us * r->khz /
					       1000u);
	for (uint32_t i = 0; i < n; i++) {
		struct pv_wait w = { .g = &g, .backstop = r->mb->backstop_us != 0 };
		uint64_t delta = rand_delta(r), t0, t1, window, poll_end;
		int fired = 0, polled = 0;

		w.lapic0 = rd(&r->pc->lapic_count);
		w.pv_seen = rd(&r->pc->pv_count);
		w.deadline = rdtsc() + delta;
		rc = pvtimer_guest_arm(&g, w.deadline);
		if (rc == PVTIMER_GUEST_PV || rc == PVTIMER_GUEST_BACKSTOP)
			r->k->pv_arms++;
		if (rc == PVTIMER_GUEST_BACKSTOP)
			arm_backstop(r, &w);
		else if (rc != PVTIMER_GUEST_PV)
			fall_back(r, &w, rc);

		/* Poll in ring 3 (native, no exit) for the window libidlepoll
		 * picks; a timer wake-up may come a little after the deadline,
		 * hence the slack past it. */
		t0 = rdtsc();
		window = idlepoll_select(ip, tsc_ns(r, t0),
					 tsc_ns(r, w.deadline) +
						 r->mb->poll_slack_ns);
		poll_end = t0 + window * r->khz / 1000000ull;
		poll_end = poll_to_deadline(r, &w, t0, window, poll_end);
		while (!(fired = pv_check(r, &w)) && rdtsc() < poll_end)
			if (idlepoll_work(ip) <= 0)
				__builtin_ia32_pause();
		polled = fired != 0;
		/* the upkeep the poll left undone, before the halt's trap */
		while (!fired && idlepoll_work(ip) > 0)
			;
		r->k->poll_ns += tsc_ns(r, rdtsc()) - tsc_ns(r, t0);
		while (!fired) {
			uint64_t seq;

			if (!w.hw) {
				rc = pvtimer_guest_before_halt(&g);
				if (rc == PVTIMER_GUEST_BACKSTOP)
					arm_backstop(r, &w);
				else if (rc != PVTIMER_GUEST_PV)
					fall_back(r, &w, rc);
			}
			seq = rd(&r->pc->seq);
			if ((fired = pv_check(r, &w)))
				break;
			halt(r, seq);
			fired = pv_check(r, &w);
		}
		t1 = rdtsc();
		idlepoll_reflect(ip, tsc_ns(r, t1) - tsc_ns(r, t0), polled);
		r->k->polled += (uint64_t)polled;

		/* Whichever timer fired, the other must not fire into the
		 * next round. A pv cancel is a store; a LAPIC one a trap. */
		if (fired == 1) {
			r->k->lapic_fired++;
			pvtimer_guest_cancel(&g);
			r->out[i] = (int64_t)(rd(&r->pc->lapic_tsc) - w.deadline);
		} else {
			r->k->pv_fired++;
			if (w.hw) {
				cancel_lapic(r);
				pvtimer_guest_hw_disarmed(&g);
			}
			r->out[i] = (int64_t)(rd(&r->pc->pv_tsc) - w.deadline);
		}
		if (r->out[i] < 0)
			r->k->early++;
		r->k->timers++;
	}
	eoi_account(r, e0);
	return 0;
}

void umain(uint64_t id)
{
	volatile struct vmm_mailbox *mb =
		(struct vmm_mailbox *)(uintptr_t)VMM_MAILBOX_GPA;
	struct run r = { .mb = mb };
	uint32_t point = 0;

	if (mb->magic != VMM_MAILBOX_MAGIC ||
	    mb->version != VMM_MAILBOX_VERSION || !mb->tsc_khz ||
	    mb->timers > mb->samples_max || mb->max_us < mb->min_us ||
	    !mb->vcpus || mb->vcpus > VMM_VCPUS_MAX || id >= mb->vcpus)
		done(1);
	if (id == 0 && mb->workload == VMM_WORKLOAD_PINGPONG) {
		puts_("guest: ring 3 up, pingpong, ");
		putu(mb->pp_rounds);
		puts_(" round trips per row\n");
	} else if (id == 0) {
		puts_("guest: ring 3 up, ");
		putu(mb->vcpus);
		puts_(" vCPU(s), ");
		putu(mb->timers);
		puts_(" timers per configuration per vCPU\n");
	}
	r.pc = (struct vmm_percpu *)(uintptr_t)VMM_PERCPU_GPA(id);
	r.khz = mb->tsc_khz;
	/* each vCPU its own deadline sequence, the same in every config */
	r.rng = (mb->seed + 0x9e3779b97f4a7c15ull * id) | 1;
	r.min_tsc = mb->min_us * r.khz / 1000;
	r.span_tsc = (mb->max_us - mb->min_us) * r.khz / 1000;
	/* a ud2 trap per leaf: only the timer workload asks */
	if (mb->workload == VMM_WORKLOAD_TIMER && mb->pv_eoi_cfgs)
		r.kvm_pv_eoi = kvm_offers_pv_eoi();

	if (mb->workload == VMM_WORKLOAD_PINGPONG) {
		/* one vCPU, no timers: requests to the VMM's device */
		if (id != 0 || run_pingpong(mb, r.pc))
			done(3);
		puts_("guest: done\n");
		done(0);
	}
	if (!mb->repeats || mb->repeats > VMM_HP_REPEATS_MAX)
		done(1);
	/* each configuration once per host halt-poll mode (the VMM applies
	 * mode rep at the phase marker) */
	for (uint32_t rep = 0; rep < mb->repeats; rep++) {
		for (uint32_t cfg = 0; cfg < VMM_CFG_COUNT; cfg++) {
			uint64_t rng = r.rng;
			uint32_t marker = cfg | rep << VMM_PHASE_REP_SHIFT;
			int rc = 0, pv_eoi;

			if (!(mb->configs & (1u << cfg)))
				continue;
			r.k = (struct vmm_counters *)(rep ? &mb->rep[rep - 1][id][cfg]
							  : &mb->cfg[id][cfg]);
			r.out = (int64_t *)(uintptr_t)(
				mb->samples_gpa +
				8ull * mb->samples_max *
					((rep * mb->vcpus + id) * VMM_CFG_COUNT + cfg));
			rendezvous(&r, point++);
			phase(marker, VMM_PHASE_BEGIN);
			if (cfg == VMM_CFG_EXITLESS && rep == 0 &&
			    mb->test_fault == id + 1) {
				/* the VMM's test of its fatal-exception path */
				void (*volatile null_fn)(void) = NULL;

				null_fn();
			}
			pv_eoi = pv_eoi_begin(&r, cfg);
			r.base_tsc = rdtsc();
			if (cfg == VMM_CFG_PLAIN)
				run_plain(&r);
			else
				rc = run_exitless(&r, (uint32_t)id);
			phase(marker, VMM_PHASE_END);
			pv_eoi_end(&r, pv_eoi);
			rendezvous(&r, point++);
			r.rng = rng; /* same deadlines in the next configuration */
			if (rc)
				done(2);
		}
	}
	if (id == 0)
		puts_("guest: done\n");
	done(0);
}
