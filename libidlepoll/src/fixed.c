/* SPDX-License-Identifier: MIT */
/* fixed: poll a constant window, whatever happens. */
#include "internal.h"

static uint64_t fixed_select(struct idlepoll_cpu *c)
{
	return ip_decided(c, c->u.fixed.window_ns);
}

static void fixed_reflect(struct idlepoll_cpu *c, uint64_t idle_ns, int polled)
{
	(void)c;
	(void)idle_ns;
	(void)polled;
}

static const struct ip_param fixed_params[] = {
	IP_PARAM("window_ns", u.fixed.window_ns, 0, 1ull << 32, 100000),
};

const struct ip_policy ip_policy_fixed = {
	.name = "fixed",
	.params = fixed_params,
	.nparams = sizeof(fixed_params) / sizeof(fixed_params[0]),
	.select = fixed_select,
	.reflect = fixed_reflect,
};
