/* SPDX-License-Identifier: MIT */
/* Built outside the meson tree with `pkg-config exitless-pvtimer` only. */
#include <exitless/pvtimer.h>
#include <exitless/pvtimer_guest.h>
#include <stdio.h>

int main(void)
{
	PVTIMER_AREA_OPTS(opts, .slot_count = 4, .tsc_khz = 1000000);
	struct pvtimer_area *area = NULL;
	struct pvtimer_guest guest;
	int err;

	err = pvtimer_area_new(&opts, &area);
	if (err < 0) {
		fprintf(stderr, "pvtimer_area_new: %d\n", err);
		return 1;
	}
	err = pvtimer_guest_init(&guest, pvtimer_area_mem(area),
				 pvtimer_area_bytes(area), 3, 0xec);
	printf("exitless-pvtimer: area of %zu bytes, memfd %d, guest bind %d\n",
	       pvtimer_area_bytes(area), pvtimer_area_fd(area), err);
	pvtimer_area_destroy(area);
	return err == 0 ? 0 : 1;
}
