// SPDX-License-Identifier: GPL-2.0
/*
 * Guest half of the TSC calibration handshake (docs/pvtimer-pci.md §4),
 * for a host that cannot read our TSC offset: round trips through slot 0's
 * calibration fields. Request k carries t1(k), our TSC just before we
 * publish seq k, and t2(k-1), our TSC when we saw the echo of k-1; the host
 * stamps its TSC when it sees each seq and echoes it. The last message has
 * PVTIMER_TSC_CALIB_LAST and only carries t2. Runs once per area (the
 * state goes DONE). Each round trip runs with interrupts off, so none
 * includes an interrupt handler; between them interrupts are on, and the
 * whole handshake is bounded (XL_CALIB_BUDGET_MS), so a slow host costs a
 * worse bound, never a stall.
 */
#include <linux/delay.h>
#include <asm/tsc.h>

#include "xl.h"

/* At least this many round trips, then stop once one was this short (our
 * own t2 - t1; the host keeps its shortest), at most XL_CALIB_MAX_ROUNDS. */
#define XL_CALIB_MIN_ROUNDS 16
#define XL_CALIB_GOOD_RT_NS 20000
#define XL_CALIB_MAX_ROUNDS 512
/* One round trip may take this long before we give up (host not there). */
#define XL_CALIB_WAIT_MS 200
/* The whole handshake: past this, the best round trip so far is final. */
#define XL_CALIB_BUDGET_MS 2000

void xl_calib_run(void *area, u64 area_size)
{
	struct pvtimer_abi_header copy, *h = area;
	struct pvtimer_geometry geo;
	struct pvtimer_abi_slot *s;
	u64 t1, t2 = 0, spin_limit = (u64)tsc_khz * XL_CALIB_WAIT_MS;
	u64 good_rt = (u64)tsc_khz * XL_CALIB_GOOD_RT_NS / 1000000u;
	u64 best_rt = U64_MAX, begin = xl_rdtsc();
	u64 budget = (u64)tsc_khz * XL_CALIB_BUDGET_MS;
	unsigned long flags;
	u32 seq, k, rounds;

	memcpy(&copy, area, sizeof(copy));
	if (pvtimer_geometry_check(&copy, area_size, &geo) ||
	    !(copy.features & PVTIMER_F_TSC_CALIBRATE) ||
	    smp_load_acquire(&h->tsc_calib_state) != PVTIMER_TSC_CALIB_WANTED)
		return;
	s = (struct pvtimer_abi_slot *)((char *)area + geo.slots_offset);
	/* continue from the slot's value: a reloaded module never repeats */
	seq = READ_ONCE(s->tsc_calib_seq) & ~PVTIMER_TSC_CALIB_LAST;
	for (k = 0;; k++) {
		bool last = k == XL_CALIB_MAX_ROUNDS ||
			    (k >= XL_CALIB_MIN_ROUNDS && best_rt <= good_rt) ||
			    (k > 0 && xl_rdtsc() - begin > budget);
		u64 start;

		local_irq_save(flags);
		seq = (seq + 1) & ~PVTIMER_TSC_CALIB_LAST;
		t1 = xl_rdtsc();
		WRITE_ONCE(s->tsc_calib_t1, t1);
		WRITE_ONCE(s->tsc_calib_t2, t2);
		smp_store_release(&s->tsc_calib_seq,
				  seq | (last ? PVTIMER_TSC_CALIB_LAST : 0));
		if (last) {
			local_irq_restore(flags);
			break;
		}
		start = xl_rdtsc();
		while (smp_load_acquire(&h->tsc_calib_echo) != seq) {
			if (xl_rdtsc() - start > spin_limit) {
				local_irq_restore(flags);
				pr_info("exitless_pvtimer: no TSC calibration answer\n");
				return;
			}
			cpu_relax();
		}
		t2 = xl_rdtsc();
		local_irq_restore(flags);
		best_rt = min(best_rt, t2 - t1);
	}
	rounds = k;
	/* the host publishes its result and DONE after the last message */
	for (k = 0; k < 100 && smp_load_acquire(&h->tsc_calib_state) !=
				       PVTIMER_TSC_CALIB_DONE; k++)
		msleep(1);
	pr_info("exitless_pvtimer: TSC calibrated in %u round trips: offset %lld error bound %llu cycles (%llu ns)\n",
		rounds, (s64)READ_ONCE(h->tsc_calib_offset),
		READ_ONCE(h->tsc_calib_error_tsc),
		READ_ONCE(h->tsc_calib_error_tsc) * 1000000ull / tsc_khz);
}
