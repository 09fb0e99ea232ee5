/* SPDX-License-Identifier: MIT */
/* The cost-minimising window of a log2 histogram of idle durations: what a
 * VMM can compute from KVM's halt histograms, no trace needed. Same cost
 * model as the simulator; the sweep is the one smart.c does over its own
 * finer histogram, in floating point because hosted counts are cumulative
 * and unbounded. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "exitless/idlepoll.h"

IDLEPOLL_API int idlepoll_hist_window(const uint64_t *counts, size_t n,
				      uint64_t halt_cost_ns,
				      uint64_t max_window_ns,
				      uint64_t *window_ns)
{
	double above = 0, polled = 0, best, h = (double)halt_cost_ns;
	uint64_t best_w = 0;
	size_t i;

	if (!counts || !window_ns || n < 2 || n > IDLEPOLL_HIST_MAX_BUCKETS ||
	    !halt_cost_ns)
		return -EINVAL;
	/* Window 0: the 0 ns periods cost nothing, every other one H. */
	for (i = 1; i < n; i++)
		above += (double)counts[i];
	best = h * above;
	/* Window 2^i catches buckets 0..i: each polled period costs its
	 * bucket's midpoint, each other one the window plus H. The open
	 * last bucket is never a candidate. */
	for (i = 1; i + 1 < n && i < 64; i++) {
		uint64_t edge = (uint64_t)1 << i;
		double cost;

		if (max_window_ns && edge > max_window_ns)
			break;
		polled += (double)counts[i] * 0.75 * (double)edge;
		above -= (double)counts[i];
		cost = polled + ((double)edge + h) * above;
		if (cost < best) {
			best = cost;
			best_w = edge;
		}
	}
	*window_ns = best_w;
	return 0;
}
