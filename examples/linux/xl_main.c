// SPDX-License-Identifier: GPL-2.0
/*
 * exitless_pvtimer: exitless timers for a Linux guest (docs/linux-guest.md).
 * Module parameters are read at load time.
 */
#include <linux/module.h>
#include <asm/tsc.h>

#include "xl.h"

static unsigned int backstop_us = 100000;
module_param(backstop_us, uint, 0444);
MODULE_PARM_DESC(backstop_us,
		 "liveness backstop B in us (0: off): while the host holds a deadline the LAPIC is armed at most B ahead");

unsigned int xl_rating = 400;
module_param_named(rating, xl_rating, uint, 0444);
MODULE_PARM_DESC(rating, "clock event rating (above the lapic's 100/150 to take the tick)");

u64 xl_backstop_tsc;
void *xl_area;
u64 xl_area_size;

static int __init xl_init(void)
{
	if (!boot_cpu_has(X86_FEATURE_CONSTANT_TSC) || !tsc_khz) {
		pr_info("exitless_pvtimer: no constant TSC, not loading\n");
		return -ENODEV;
	}
	xl_backstop_tsc = (u64)backstop_us * tsc_khz / 1000u;
	return xl_pci_register();
}

static void __exit xl_exit(void)
{
	xl_pci_unregister();
}

module_init(xl_init);
module_exit(xl_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("exitless pvtimer: clock events through a shared-memory timer ABI");
