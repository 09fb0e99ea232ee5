// SPDX-License-Identifier: GPL-2.0
/*
 * The fallback timer: this CPU's local APIC, programmed to raise the CPU's
 * pvtimer vector (so the one handler sees it). Once our device is the tick
 * device the kernel's lapic device is detached (or became the broadcast
 * device), so nothing else programs the LVTT here except the broadcast
 * code's shutdown while a device registers: xl_clockevt_online() re-arms
 * after registering. TSC-deadline mode where the CPU has it (KVM), else
 * one-shot count mode (TCG) at a rate calibrated against the TSC.
 */
#include <linux/math64.h>
#include <asm/apic.h>
#include <asm/msr.h>
#include <asm/tsc.h>

#include "xl.h"

static bool xl_tsc_deadline;
static u64 xl_lapic_per_tsc_q32; /* LAPIC ticks (divide 16) per TSC, 32.32 */

/* One measurement: LAPIC ticks over ~2 ms of TSC. Each reading of the
 * count is bracketed by two TSC reads; a vCPU descheduled inside a bracket
 * (TCG on a loaded host) shows as a wide bracket and the sample is
 * dropped. Returns the bracket width, 0 on failure. */
static u64 xl_lapic_sample(u64 *ticks, u64 *tsc)
{
	u64 a0, a1, b0, b1;
	u32 c0, c1;

	a0 = xl_rdtsc();
	c0 = apic_read(APIC_TMCCT);
	a1 = xl_rdtsc();
	while (xl_rdtsc() - a1 < 2ull * tsc_khz)
		cpu_relax();
	b0 = xl_rdtsc();
	c1 = apic_read(APIC_TMCCT);
	b1 = xl_rdtsc();
	if (c1 >= c0)
		return 0;
	*ticks = c0 - c1;
	*tsc = (b0 + b1) / 2 - (a0 + a1) / 2;
	return (a1 - a0) + (b1 - b0) + 1;
}

int xl_lapic_calibrate(void)
{
	u64 ticks, tsc, width, best = U64_MAX, best_ticks = 0, best_tsc = 1;
	u32 lvtt, tdcr, left;
	unsigned long flags;
	int i;

	if (boot_cpu_has(X86_FEATURE_TSC_DEADLINE_TIMER)) {
		xl_tsc_deadline = true;
		return 0;
	}
	/* The best of 8 samples against a free-running count, interrupts
	 * off; the kernel's armed lapic event is put back (late) after. */
	local_irq_save(flags);
	lvtt = apic_read(APIC_LVTT);
	tdcr = apic_read(APIC_TDCR);
	left = apic_read(APIC_TMCCT);
	apic_write(APIC_LVTT, lvtt | APIC_LVT_MASKED);
	apic_write(APIC_TDCR, APIC_TDR_DIV_16);
	apic_write(APIC_TMICT, 0xffffffffu);
	for (i = 0; i < 8; i++) {
		width = xl_lapic_sample(&ticks, &tsc);
		if (width && width < best) {
			best = width;
			best_ticks = ticks;
			best_tsc = tsc;
		}
	}
	ticks = 0xffffffffu - apic_read(APIC_TMCCT);
	apic_write(APIC_TDCR, tdcr);
	apic_write(APIC_LVTT, lvtt);
	apic_write(APIC_TMICT, left > ticks ? left - ticks : (left ? 1 : 0));
	local_irq_restore(flags);
	if (!best_ticks)
		return -ENODEV;
	xl_lapic_per_tsc_q32 = div64_u64(best_ticks << 32, best_tsc);
	pr_info("exitless_pvtimer: LAPIC fallback in count mode, %llu ticks per ms (bracket %llu cycles)\n",
		mul_u64_u64_shr(tsc_khz, xl_lapic_per_tsc_q32, 32), best);
	return 0;
}

/* Interrupts off, on c's CPU. */
void xl_lapic_program(struct xl_cpu *c, u64 deadline_tsc)
{
	u64 now = xl_rdtsc(), delta, count;

	c->lapic_deadline = deadline_tsc;
	c->lapic_on = true;
	c->n.lapic_writes++;
	if (xl_tsc_deadline) {
		apic_write(APIC_LVTT, c->vector | APIC_LVT_TIMER_TSCDEADLINE);
		/* order the LVTT mode switch before the MSR write (SDM) */
		asm volatile("mfence" ::: "memory");
		wrmsrl(MSR_IA32_TSC_DEADLINE, deadline_tsc ? deadline_tsc : 1);
		return;
	}
	delta = (s64)(deadline_tsc - now) > 0 ? deadline_tsc - now : 0;
	count = mul_u64_u64_shr(delta, xl_lapic_per_tsc_q32, 32) + 1;
	if (count > 0xffffffffull)
		count = 0xffffffffull; /* fires early; the handler re-arms */
	/* TDCR stays divide-16: the kernel's lapic code writes nothing else */
	apic_write(APIC_LVTT, c->vector); /* one-shot, unmasked */
	apic_write(APIC_TMICT, (u32)count);
}

/* Has the LAPIC raised (or dropped) what we programmed? TSC-deadline mode
 * fires at or after its TSC: the TSC alone answers (no MSR read, which is
 * an exit under KVM). A calibrated count may run out before the TSC gets
 * there, by any amount if the rate was off: only the count itself says. */
bool xl_lapic_expired(struct xl_cpu *c, u64 now)
{
	if (!c->lapic_on)
		return false;
	if (xl_tsc_deadline) {
		if ((s64)(now - c->lapic_deadline) < 0)
			return false;
	} else if (apic_read(APIC_TMCCT)) {
		return false;
	}
	c->lapic_on = false;
	return true;
}

/* After our device left the tick: stop the LAPIC only if it still holds
 * our vector (a replacement lapic device has rewritten the LVTT). */
void xl_lapic_release(struct xl_cpu *c)
{
	u32 lvtt = apic_read(APIC_LVTT);

	c->lapic_on = false;
	if ((lvtt & APIC_VECTOR_MASK) != c->vector)
		return;
	if (xl_tsc_deadline)
		wrmsrl(MSR_IA32_TSC_DEADLINE, 0);
	else
		apic_write(APIC_TMICT, 0);
	apic_write(APIC_LVTT, APIC_LVT_MASKED | LOCAL_TIMER_VECTOR);
}
