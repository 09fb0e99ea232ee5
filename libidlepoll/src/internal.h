/* SPDX-License-Identifier: MIT */
/* Private state and policy table of libidlepoll. Everything declared here is
 * freestanding: the core files include nothing but this header. */
#ifndef IDLEPOLL_INTERNAL_H
#define IDLEPOLL_INTERNAL_H

#include "exitless/idlepoll.h"

/* errno values of Linux, spelled out because a guest kernel embedding the
 * core may have no <errno.h>; hosted files check they match. */
#define IP_ENOENT 2
#define IP_EINVAL 22

#define IP_MAGIC 0x6c6f7069u /* "iplo": the state was initialised */
#define IP_NO_LIMIT UINT64_MAX

/* Smart policy histogram: bucket 0 holds d < 512 ns, then 4 log-spaced
 * buckets per octave up to 2^22 ns (4.2 ms), then one overflow bucket whose
 * upper edge is infinite (never a candidate window). */
#define IP_NB 54
#define IP_OVERFLOW (IP_NB - 1)
#define IP_NCTX 7          /* context: previous period's bucket / 8 */
#define IP_UNIT 16         /* weight of one event before decay */
#define IP_D_CLAMP (1ull << 34) /* d beyond ~17 s counts as 17 s */
#define IP_NEXPERT 3       /* context model, global model, ski rental */

struct ip_hist {
	uint32_t total;      /* sum of cnt[] */
	uint32_t stale;      /* events added since best_w was last refreshed */
	uint32_t moved;      /* an event since the last scan may have moved the
			      * argmin; while 0, best_w is the argmin of the
			      * histogram as it is now (smart.c, argmin_kept) */
	uint32_t top;        /* no weight above bucket top (an upper bound) */
	uint64_t best_w;     /* cached expected-cost-minimising window */
	uint64_t best_h;     /* H and max_poll best_w was computed for */
	uint64_t best_max;
	uint32_t cnt[IP_NB]; /* decayed event weight per bucket */
	uint64_t sum[IP_NB]; /* decayed sum of weight * d per bucket */
};

struct ip_fixed {
	uint64_t window_ns;
};

struct ip_haltpoll {
	uint64_t cap_ns;        /* guest_halt_poll_ns */
	uint64_t grow;          /* guest_halt_poll_grow */
	uint64_t grow_start_ns; /* guest_halt_poll_grow_start */
	uint64_t shrink;        /* guest_halt_poll_shrink */
	uint64_t allow_shrink;  /* guest_halt_poll_allow_shrink */
	uint64_t limit_ns;      /* per-CPU poll_limit_ns (state) */
};

struct ip_kvm {
	uint64_t max_ns;        /* halt_poll_ns / KVM_CAP_HALT_POLL */
	uint64_t grow;          /* halt_poll_ns_grow */
	uint64_t grow_start_ns; /* halt_poll_ns_grow_start */
	uint64_t shrink;        /* halt_poll_ns_shrink */
	uint64_t poll_ns;       /* vcpu->halt_poll_ns (state) */
};

struct ip_smart {
	uint64_t max_poll_ns;   /* never poll longer than this */
	uint64_t decay_events;  /* histograms halve past this many events */
	uint64_t ctx_min;       /* events a context needs before it is used */
	uint64_t expert_shift;  /* expert cost memory: 2^shift periods */
	uint64_t refresh;       /* recompute a window after this many events */
	uint32_t prev_ctx;
	uint32_t best;          /* the expert to follow: first cheapest cost[] */
	/* The last period, reflected but not yet learnt by the histograms
	 * (smart.c, smart_learn): at most one, learnt by idlepoll_work() or
	 * by whatever call needs the histograms first. */
	uint32_t pending;
	/* next_gw and next_cw are the global and context windows the next
	 * select uses: nothing pending, no refresh due, no parameter changed
	 * since they were computed. */
	uint32_t ready;
	uint64_t pending_d;
	uint64_t next_gw, next_cw;
	uint64_t w[IP_NEXPERT];    /* each expert's window for this period */
	uint64_t cost[IP_NEXPERT]; /* each expert's decayed realised cost */
	struct ip_hist global;
	struct ip_hist ctx[IP_NCTX];
};

struct idlepoll_cpu {
	uint32_t magic;
	uint32_t policy;
	uint64_t halt_cost_ns;
	uint64_t limit_ns;  /* next-timer bound of the current period */
	uint64_t window_ns; /* what the last select returned */
	union {
		struct ip_fixed fixed;
		struct ip_haltpoll haltpoll;
		struct ip_kvm kvm;
		struct ip_smart smart;
	} u;
};

/* A runtime-settable parameter: a uint64_t at @off in struct idlepoll_cpu. */
struct ip_param {
	const char *key;
	uint32_t off;
	uint64_t min, max;
	uint64_t def;
};

struct ip_policy {
	const char *name;
	const struct ip_param *params;
	unsigned int nparams;
	void (*reset)(struct idlepoll_cpu *c);
	/* the window, bounded by c->limit_ns and recorded (ip_decided()):
	 * the dispatcher tail-calls it */
	uint64_t (*select)(struct idlepoll_cpu *c);
	void (*reflect)(struct idlepoll_cpu *c, uint64_t idle_ns, int polled);
	/* optional: one chunk of the upkeep the next select would otherwise
	 * do itself; 1 if it did one, 0 when nothing is left */
	int (*work)(struct idlepoll_cpu *c);
	/* optional: a parameter is about to change (set_param) */
	void (*param_changing)(struct idlepoll_cpu *c);
};

#define IP_PARAM(key, member, min, max, def)                                 \
	{ key, (uint32_t)__builtin_offsetof(struct idlepoll_cpu, member),    \
	  min, max, def }

extern const struct ip_policy ip_policy_fixed;
extern const struct ip_policy ip_policy_haltpoll;
extern const struct ip_policy ip_policy_kvm;
extern const struct ip_policy ip_policy_smart;

/* Zero @n bytes without a call to memset (which the core may not have). */
static inline void ip_zero(void *p, size_t n)
{
	volatile unsigned char *b = p;

	while (n--)
		*b++ = 0;
}

static inline uint64_t ip_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* A policy's select ends here: the window never reaches past the next
 * timer, and reflect may need to know what it was. */
static inline uint64_t ip_decided(struct idlepoll_cpu *c, uint64_t w)
{
	w = ip_min(w, c->limit_ns);
	c->window_ns = w;
	return w;
}

/* The cost model: a period of length d with window w costs d when the poll
 * catches it, else the wasted poll plus the halt. */
static inline uint64_t ip_cost(uint64_t d, uint64_t w, uint64_t halt_cost)
{
	return d <= w ? d : w + halt_cost;
}

#endif
