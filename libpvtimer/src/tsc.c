/* SPDX-License-Identifier: MIT */
/* Guest/host TSC conversion, KVM's definition: guest = (host*mult >> shift) + off. */
#include <errno.h>

#include "internal.h"

/* KVM on x86 uses 48 fractional bits for the TSC ratio (VMX); any shift
 * that keeps the ratio in 64 bits works the same way here. */
#define RATIO_SHIFT 48

int pvtimer_tsc_map_init(struct pvtimer_tsc_map *map, uint32_t host_khz,
			 uint32_t guest_khz, int64_t offset)
{
	if (!map || !host_khz || !guest_khz)
		return -EINVAL;
	if (host_khz == guest_khz) {
		map->mult = 1;
		map->shift = 0;
	} else {
		map->mult = (uint64_t)(((unsigned __int128)guest_khz << RATIO_SHIFT) /
				       host_khz);
		map->shift = RATIO_SHIFT;
	}
	map->reserved = 0;
	map->offset = offset;
	for (unsigned int i = 0; i < sizeof(map->reserved_tail) /
					 sizeof(map->reserved_tail[0]); i++)
		map->reserved_tail[i] = 0;
	return 0;
}

uint64_t pvtimer_tsc_to_guest(const struct pvtimer_tsc_map *map,
			      uint64_t host_tsc)
{
	unsigned __int128 scaled;

	/* identity scale (same rates, the common case): no multiply */
	if (map->mult == 1 && map->shift == 0)
		return host_tsc + (uint64_t)map->offset;
	scaled = ((unsigned __int128)host_tsc * map->mult) >> map->shift;
	return (uint64_t)scaled + (uint64_t)map->offset;
}

/* ceil((unscaled << shift) / mult), the exact conversion. */
static uint64_t divide_up(const struct pvtimer_tsc_map *map, uint64_t unscaled)
{
	return (uint64_t)((((unsigned __int128)unscaled << map->shift) +
			   map->mult - 1) /
			  map->mult);
}

/* Modular, as the hardware is: guest - offset is taken mod 2^64 (a guest
 * TSC that wrapped maps to the host TSC it wrapped at), then unscaled with
 * rounding up, so to_guest(to_host(g)) >= g: a converted deadline is never
 * early. */
uint64_t pvtimer_tsc_to_host(const struct pvtimer_tsc_map *map,
			     uint64_t guest_tsc)
{
	uint64_t unscaled = guest_tsc - (uint64_t)map->offset;

	if (map->mult == 1 && map->shift == 0)
		return unscaled;
	if (!map->mult)
		return UINT64_MAX;
	/* One exact 128/64 division. A precomputed reciprocal (a multiply,
	 * a shift and an exact correction) was tried for 1.2 and measured no
	 * faster on the development machine (~9 ns either way,
	 * bench/pvtimer/tsc_cost.c), so the division stays. */
	return divide_up(map, unscaled);
}
