/* SPDX-License-Identifier: MIT */
/* The agent's clock is the TSC; nanoseconds only for options, stats and
 * the sleep's timeout. Conversions are a multiply and a shift by
 * precomputed 32.32 fixed-point factors (no division on the hot path), with
 * an identity fast path for a 1 GHz TSC (ns == TSC); each agent keeps its
 * own factors, fixed at pvagent_new(), so a rate given later to another
 * agent never changes them under it. */
#ifndef AGENT_CLOCK_H
#define AGENT_CLOCK_H

#include <stdint.h>

/* ns <-> TSC factors for one TSC rate. */
struct agent_clock {
	uint64_t ns_to_tsc_mul; /* TSC per ns, 32.32 fixed point */
	uint64_t tsc_to_ns_mul; /* ns per TSC, 32.32 fixed point */
	uint64_t khz;
	uint8_t identity;       /* 1 GHz: both conversions are the identity */
};

#define AGENT_CLOCK_SHIFT 32

static inline uint64_t agent_tsc(void)
{
	return __builtin_ia32_rdtsc();
}

/* Factors for a TSC of @khz (1..100 GHz, checked by the caller). */
void agent_clock_init(struct agent_clock *c, uint64_t khz);

static inline uint64_t agent_clock_scale(uint64_t v, uint64_t mul)
{
	unsigned __int128 p = (unsigned __int128)v * mul >> AGENT_CLOCK_SHIFT;

	return p > UINT64_MAX ? UINT64_MAX : (uint64_t)p;
}

static inline uint64_t agent_ns_to_tsc(const struct agent_clock *c,
				       uint64_t ns)
{
	return c->identity ? ns : agent_clock_scale(ns, c->ns_to_tsc_mul);
}

static inline uint64_t agent_tsc_to_ns(const struct agent_clock *c,
				       uint64_t tsc)
{
	return c->identity ? tsc : agent_clock_scale(tsc, c->tsc_to_ns_mul);
}

/* The process's TSC rate: given (agent_set_tsc_khz) or measured once. */
uint64_t agent_tsc_khz(void);
void agent_set_tsc_khz(uint64_t khz);

/* log2 bucket of @ns, capped at @nbuckets - 1. */
static inline uint32_t agent_log2_bucket_of(uint64_t ns, uint32_t nbuckets)
{
	uint32_t b = ns > 1 ? 63u - (uint32_t)__builtin_clzll(ns) : 0;

	return b < nbuckets ? b : nbuckets - 1;
}
#define agent_log2_bucket(ns) agent_log2_bucket_of((ns), PVAGENT_LAT_BUCKETS)

#endif
