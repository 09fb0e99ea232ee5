/* SPDX-License-Identifier: MIT */
/* agent-bench's own state, shared by its four files: the configuration,
 * one run's figures, and the lateness sample buffer and TSC rate that the
 * runs fill in and the driver sets up. Private to the benchmark. */
#ifndef EXITLESS_AGENT_BENCH_H
#define EXITLESS_AGENT_BENCH_H

#include <stdint.h>

#define MAX_SAMPLES (8u << 20)

struct cfg {
	uint32_t slots[8];
	uint32_t nslots;
	uint64_t duration_ns;
	uint32_t reps;
	uint32_t guest_threads;
	int json;
	int pin;
	int heap;
	int agent_cpu; /* -1: pick one that is not vcpu_cpu */
	int vcpu_cpu;
	int timerfd_cpu; /* -1: vcpu_cpu */
	int fifo;        /* SCHED_FIFO for the adaptive agent */
	int every_turn;  /* the engine's seam: a pass on every turn */
	uint64_t sleep_sweep_us[8];
	uint64_t spin_sweep_us[8];
	uint32_t nsweep;
	int breakdown;   /* print where late fires' time went (stderr) */
};

/* What the host took from the agent thread during a run (runs.c). */
struct host_take {
	uint64_t run_delay_ns; /* runnable, waiting for the CPU (schedstat) */
	uint64_t nvcsw;        /* involuntary context switches */
	uint64_t steal_ns;     /* the agent CPU's steal time (/proc/stat) */
	uint64_t irq_ns;       /* ... its irq and softirq time */
};

/* Fires later than the break-down threshold, by cause (runs.c). */
struct breakdown {
	uint64_t late;
	uint64_t read_ns, wait_ns, batch_ns; /* summed parts */
	uint64_t by_read, by_stall, by_pass, by_batch; /* fires per cause */
	uint64_t gap_max_ns;
	uint64_t fires, scans, publishes, promises_late, run_ns;
	uint64_t busy_ns; /* agent time in passes that read a slot */
	uint64_t takes;   /* pending takes that found bits (summary xchg) */
	struct host_take take;
};

struct result {
	const char *impl;
	const char *mode;
	uint64_t max_sleep_us;
	uint64_t spin_us;
	uint32_t slots;
	uint64_t timers;
	double p50, p99, p999, max;
	double p99_nostall; /* p99 of the fires not put on a stall */
	double timers_per_s;
	double cpu_ns_per_timer;
	double agent_cpu;
	double fallback_rate;
};

/* runs.c */
extern uint64_t khz;       /* TSC rate, set by calibrate() */
extern uint32_t *samples;  /* MAX_SAMPLES lateness samples, the driver's */
void calibrate(void);
uint64_t thread_cpu_ns(void);
uint64_t rnd(uint64_t *s);
int run_agent(const struct cfg *c, uint32_t n, uint32_t mode,
	      uint64_t max_sleep_us, uint64_t spin_us, struct result *res);
int run_timerfd(const struct cfg *c, uint32_t n, struct result *res);

/* hostile.c */
int hostile_bench(const struct cfg *c, uint32_t nhostile);

/* micro.c */
void heap_bench(void);
int probe_cpus(int verbose);
void inject_bench(void);
void hiccups(int cpu, uint64_t ns, uint64_t tsc_khz);

/* output.c */
void median_of(struct result *reps, uint32_t n, struct result *out);
void print_text(const struct result *r, const struct result *base);
void print_json(const struct result *r, int first);
void print_breakdown(uint32_t slots, uint32_t mode, const struct breakdown *b);

#endif /* EXITLESS_AGENT_BENCH_H */
