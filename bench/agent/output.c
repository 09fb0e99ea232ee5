/* SPDX-License-Identifier: MIT */
/* agent-bench's figures: the median of repetitions, then one text line or
 * one JSON object per run. The text line also compares each run with the
 * timerfd baseline of its slot count, the figure the benchmark is for. */
#include <stdio.h>
#include <stdlib.h>

#include <exitless/agent.h>

#include "agent_bench.h"

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median over repetitions, field by field. */
void median_of(struct result *reps, uint32_t n, struct result *out)
{
	double v[16];

	*out = reps[0];
#define MED(f)                                                               \
	do {                                                                 \
		for (uint32_t i = 0; i < n; i++)                             \
			v[i] = (double)reps[i].f;                            \
		qsort(v, n, sizeof(double), cmp_d);                          \
		out->f = v[n / 2];                                           \
	} while (0)
	MED(p50);
	MED(p99);
	MED(p99_nostall);
	MED(p999);
	MED(max);
	MED(timers_per_s);
	MED(cpu_ns_per_timer);
	MED(agent_cpu);
	MED(fallback_rate);
#undef MED
}

void print_text(const struct result *r, const struct result *base)
{
	char mode[32];

	if (r->max_sleep_us)
		snprintf(mode, sizeof(mode), "adapt/%llu:%llu",
			 (unsigned long long)r->max_sleep_us,
			 (unsigned long long)r->spin_us);
	else
		snprintf(mode, sizeof(mode), "%s", r->mode ? r->mode : "-");
	printf("%-8s %-16s %5u %8llu %9.0f %9.0f %9.0f %9.0f %9.0f %8.0f %6.3f %6.3f",
	       r->impl, mode, r->slots, (unsigned long long)r->timers,
	       r->p50, r->p99, r->p999, r->max, r->timers_per_s,
	       r->cpu_ns_per_timer, r->agent_cpu, r->fallback_rate);
	if (base && base != r && base->p99 > 0)
		printf("  p99 x%.2f cpu/timer x%.2f", r->p99 / base->p99,
		       base->cpu_ns_per_timer > 0
			       ? r->cpu_ns_per_timer / base->cpu_ns_per_timer
			       : 0);
	printf("\n");
}

void print_json(const struct result *r, int first)
{
	printf("%s\n  {\"impl\": \"%s\", \"mode\": ", first ? "" : ",", r->impl);
	if (r->mode)
		printf("\"%s\"", r->mode);
	else
		printf("null");
	printf(", \"max_sleep_us\": %llu, \"spin_us\": %llu, "
	       "\"slots\": %u, \"timers\": %llu, "
	       "\"late_p50_ns\": %.0f, \"late_p99_ns\": %.0f, "
	       "\"late_p999_ns\": %.0f, \"late_max_ns\": %.0f, "
	       "\"timers_per_s\": %.0f, \"cpu_ns_per_timer\": %.0f, "
	       "\"agent_cpu\": %.4f, \"fallback_rate\": %.4f, "
	       "\"late_p99_nostall_ns\": %.0f}",
	       (unsigned long long)r->max_sleep_us,
	       (unsigned long long)r->spin_us, r->slots,
	       (unsigned long long)r->timers, r->p50, r->p99, r->p999, r->max,
	       r->timers_per_s, r->cpu_ns_per_timer, r->agent_cpu,
	       r->fallback_rate, r->p99_nostall);
}

/* To stderr, so that --json stays one document. */
void print_breakdown(uint32_t slots, uint32_t mode, const struct breakdown *b)
{
	double l = b->late ? (double)b->late : 1;
	double s = b->run_ns ? (double)b->run_ns / 1e9 : 1;

	fprintf(stderr,
		"breakdown %u slots %s: %llu of %llu fires late by >= 5 us; "
		"mean parts read %.0f wait %.0f batch %.0f ns; cause: read %llu "
		"stall %llu pass %llu batch %llu (longest stall gap %llu ns); "
		"passes %.0f/s, header writes %.0f/s, summary exchanges %.0f/s, "
		"late promises %llu; "
		"agent thread: run delay %.2f ms/s, %llu involuntary switches, "
		"cpu steal %.1f ms/s, irq %.1f ms/s; work %.0f ns per fire "
		"(passes that read a slot)\n",
		slots, mode == PVAGENT_MODE_DEDICATED ? "dedicated" : "adaptive",
		(unsigned long long)b->late, (unsigned long long)b->fires,
		(double)b->read_ns / l, (double)b->wait_ns / l,
		(double)b->batch_ns / l, (unsigned long long)b->by_read,
		(unsigned long long)b->by_stall, (unsigned long long)b->by_pass,
		(unsigned long long)b->by_batch,
		(unsigned long long)b->gap_max_ns, (double)b->scans / s,
		(double)b->publishes / s, (double)b->takes / s,
		(unsigned long long)b->promises_late,
		(double)b->take.run_delay_ns / 1e6 / s,
		(unsigned long long)b->take.nvcsw,
		(double)b->take.steal_ns / 1e6 / s, (double)b->take.irq_ns / 1e6 / s,
		b->fires ? (double)b->busy_ns / (double)b->fires : 0);
}
