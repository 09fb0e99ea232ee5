/* SPDX-License-Identifier: MIT */
/* Driver for decision-cost.sh: N select+reflect pairs of one policy over a
 * trace (cycled), each followed by the upkeep a poll loop would do
 * (idlepoll_work() until it returns 0) when WORK is 1. callgrind counts
 * the instructions inside each library call (--toggle-collect), so that
 * divided by N they are the cost of one decision on the critical path and
 * the cost of its upkeep off it. */
#include <stdio.h>
#include <stdlib.h>

#include <exitless/idlepoll.h>
#include <exitless/idlepoll_sim.h>

int main(int argc, char **argv)
{
	struct idlepoll_trace *t;
	struct idlepoll_cpu *c;
	uint64_t now = 0, sink = 0;
	char err[512];
	long n, i, chunks = 0;
	int policy, work;

	if (argc != 6) {
		fprintf(stderr, "usage: %s POLICY HALT_COST_NS N TRACE WORK\n",
			argv[0]);
		return 2;
	}
	policy = idlepoll_policy_from_name(argv[1]);
	n = atol(argv[3]);
	work = atoi(argv[5]);
	if (policy < 0 || idlepoll_trace_load(argv[4], &t, err, sizeof(err)) < 0) {
		fprintf(stderr, "bad policy or trace: %s\n", err);
		return 2;
	}
	IDLEPOLL_OPTS(opts, .policy = (uint32_t)policy,
		      .halt_cost_ns = strtoull(argv[2], NULL, 0));
	if (idlepoll_new(&opts, &c) < 0)
		return 1;
	for (i = 0; i < n; i++) {
		uint64_t d = t->idle_ns[(size_t)i % t->n];
		uint64_t w = idlepoll_select(c, now, IDLEPOLL_NO_TIMER);

		idlepoll_reflect(c, d, d <= w);
		/* the poll loop's share: upkeep for the next select */
		while (work && idlepoll_work(c) > 0)
			chunks++;
		now += d;
		sink += w;
	}
	printf("%llu %ld\n", (unsigned long long)sink, chunks);
	idlepoll_destroy(c);
	idlepoll_trace_free(t);
	return 0;
}
