/* SPDX-License-Identifier: MIT */
/* Order statistics for benchmarks: sorting samples, a percentile of sorted
 * samples, the median of per-run figures. */
#ifndef EXITLESS_TEST_ORDER_H
#define EXITLESS_TEST_ORDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static inline int order_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static inline int order_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static inline void order_sort_u64(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), order_cmp_u64);
}

/* The p-quantile (0 <= p <= 1, nearest rank below) of @n sorted samples;
 * 0 for none. */
static inline uint64_t order_pct_u64(const uint64_t *v, size_t n, double p)
{
	return n ? v[(size_t)(p * (double)(n - 1))] : 0;
}

/* Sorts @v in place. */
static inline double order_median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), order_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
