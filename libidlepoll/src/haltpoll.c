/* SPDX-License-Identifier: MIT */
/* haltpoll: the Linux guest cpuidle haltpoll governor's rule
 * (drivers/cpuidle/governors/haltpoll.c), parameters as its module params.
 *
 * The governor polls for the per-CPU limit (halting at once while it is 0),
 * and adjusts the limit only after a halt, from the time spent halted:
 * grow when that time was above the limit but within the cap, shrink when it
 * was beyond the cap (resetting to 0 below grow_start). */
#include "internal.h"

static uint64_t haltpoll_select(struct idlepoll_cpu *c)
{
	return ip_decided(c, c->u.haltpoll.limit_ns);
}

static void haltpoll_reflect(struct idlepoll_cpu *c, uint64_t idle_ns,
			     int polled)
{
	struct ip_haltpoll *h = &c->u.haltpoll;
	uint64_t block_ns, val;

	if (polled)
		return; /* the poll state's reflect adjusts nothing */
	block_ns = idle_ns > c->window_ns ? idle_ns - c->window_ns : 0;
	if (block_ns > h->limit_ns && block_ns <= h->cap_ns) {
		val = h->limit_ns * h->grow;
		if (val < h->grow_start_ns)
			val = h->grow_start_ns;
		if (val > h->cap_ns)
			val = h->cap_ns;
		h->limit_ns = val;
	} else if (block_ns > h->cap_ns && h->allow_shrink) {
		val = h->shrink ? h->limit_ns / h->shrink : 0;
		if (val < h->grow_start_ns)
			val = 0;
		h->limit_ns = val;
	}
}

static const struct ip_param haltpoll_params[] = {
	IP_PARAM("cap_ns", u.haltpoll.cap_ns, 0, 1ull << 32, 200000),
	IP_PARAM("grow", u.haltpoll.grow, 0, 1024, 2),
	IP_PARAM("grow_start_ns", u.haltpoll.grow_start_ns, 0, 1ull << 32, 50000),
	IP_PARAM("shrink", u.haltpoll.shrink, 0, 1024, 2),
	IP_PARAM("allow_shrink", u.haltpoll.allow_shrink, 0, 1, 1),
};

const struct ip_policy ip_policy_haltpoll = {
	.name = "haltpoll",
	.params = haltpoll_params,
	.nparams = sizeof(haltpoll_params) / sizeof(haltpoll_params[0]),
	.select = haltpoll_select,
	.reflect = haltpoll_reflect,
};
