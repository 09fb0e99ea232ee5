// SPDX-License-Identifier: GPL-2.0
/*
 * The freestanding pvtimer headers under kbuild (-nostdinc, kernel types):
 * pvtimer_abi.h, pvtimer_geometry.h and pvtimer_guest.h included as a guest
 * kernel includes them, every helper instantiated, layout asserted again.
 * Built by kbuild-headers.sh as a module; never loaded.
 */
#include <linux/module.h>

#include <exitless/pvtimer_abi.h>
#include <exitless/pvtimer_guest.h>

static_assert(sizeof(struct pvtimer_abi_header) == 256);
static_assert(sizeof(struct pvtimer_abi_slot) == 128);
static_assert(offsetof(struct pvtimer_abi_header, tsc_calib_state) == 0xc0);
static_assert(offsetof(struct pvtimer_abi_slot, tsc_calib_seq) == 0x18);

static struct pvtimer_guest g;
static u8 area[PVTIMER_ABI_PAGE_SIZE] __aligned(64);

/* Every helper once, so each is compiled, not only parsed. */
static int __init kbuild_headers_init(void)
{
	int r = pvtimer_guest_init(&g, area, sizeof(area), 0, 0xec);

	if (r)
		return 0;
	pvtimer_guest_set_backstop(&g, 1000);
	r = pvtimer_guest_arm(&g, 12345);
	r |= pvtimer_guest_before_halt(&g);
	r |= pvtimer_guest_on_interrupt(&g);
	r |= pvtimer_guest_on_hw_timer(&g);
	pvtimer_guest_cancel(&g);
	return r < 0 ? r : (int)(pvtimer_guest_hw_deadline(&g) & 0);
}
module_init(kbuild_headers_init);
MODULE_LICENSE("GPL");
