/* SPDX-License-Identifier: MIT */
/* Built outside the meson tree with `pkg-config exitless-idlepoll` only. */
#include <exitless/idlepoll.h>
#include <stdio.h>

int main(void)
{
	IDLEPOLL_OPTS(opts, .policy = IDLEPOLL_POLICY_SMART,
		      .halt_cost_ns = 20000);
	struct idlepoll_cpu *c = NULL;
	uint64_t w = 0;
	int err, i;

	err = idlepoll_new(&opts, &c);
	if (err < 0) {
		fprintf(stderr, "idlepoll_new: %d\n", err);
		return 1;
	}
	for (i = 0; i < 100; i++) {
		w = idlepoll_select(c, 0, IDLEPOLL_NO_TIMER);
		idlepoll_reflect(c, 5000, 5000 <= w);
	}
	w = idlepoll_select(c, 0, IDLEPOLL_NO_TIMER);
	printf("exitless-idlepoll: %s state of %zu bytes, window %llu ns\n",
	       idlepoll_policy_name(idlepoll_cpu_policy(c)), idlepoll_cpu_size(),
	       (unsigned long long)w);
	idlepoll_destroy(c);
	return w >= 5000 && w < 20000 ? 0 : 1;
}
