/* SPDX-License-Identifier: MIT */
/* The pingpong report: per service time and configuration, round-trip
 * p50/p99 and what the waiting cost in CPU, the guest's polling (its own
 * TSC count) and the host's halt polling (KVM's halt_poll_success_ns +
 * halt_poll_fail_ns), per round trip and as a share of one CPU over the
 * run; plus halt_exits and halt_successful_poll per round trip. A table,
 * or the JSON "pingpong" array. Guest-written counters are copied once. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static uint64_t kvm_delta(const struct pp_phase *p, int j)
{
	if (p->after[0][j] == UINT64_MAX || p->before[0][j] == UINT64_MAX)
		return 0;
	return p->after[0][j] - p->before[0][j];
}

/* The guest's polling as a share of its waiting, over the round trips
 * that ran undisturbed. This host is a guest itself: now and then (~1%
 * of round trips here, more under load) the outer hypervisor takes the
 * vCPU's CPU away for milliseconds, and a poll that spans that is wall
 * time, not CPU burned. A round trip of more than STALL_NS from request
 * to the wait's end counts as such a stall, is left out here and
 * counted; the raw share over the whole run is reported too. */
#define STALL_NS 1000000

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void stall_cpu(struct ctx *c, const int64_t *poll,
		      const int64_t *cycle, uint64_t n, struct pp_result *r)
{
	double p = 0, w = 0, *each = malloc((n ? n : 1) * sizeof(double));
	uint64_t kept = 0;

	if (!each)
		die("pingpong summary", ENOMEM);
	for (uint64_t i = 0; i < n; i++) {
		/* guest-written: read once, clamp */
		int64_t pi = poll[i], ci = cycle[i];
		int64_t cns = tsc_to_ns(c, ci), pns = tsc_to_ns(c, pi);

		if (cns <= 0 || cns > STALL_NS || pns < 0 || pns > cns) {
			r->stalled++;
			continue;
		}
		p += (double)pns;
		w += (double)cns;
		each[kept++] = (double)pns;
	}
	r->guest_poll_cpu = w > 0 ? p / w : 0;
	r->guest_poll_ns_mean = kept ? p / (double)kept : 0;
	/* the median: a poll the outer host interrupted for less than
	 * STALL_NS still counts in the mean */
	qsort(each, kept, sizeof(*each), cmp_dbl);
	r->guest_poll_ns_per_rtt = kept ? each[kept / 2] : 0;
	free(each);
}

void pp_summarize(struct ctx *c, uint32_t svc, uint32_t cfg,
		  struct pp_result *r)
{
	const struct pp_phase *p = &c->pp[svc][cfg];
	struct vmm_pp_counters k;
	uint64_t n, host_ns;
	const int64_t *s;
	double rt;

	memset(r, 0, sizeof(*r));
	r->ran = p->ran;
	if (!p->ran)
		return;
	if (p->error[0]) {
		r->error = p->error;
		return;
	}
	memcpy(&k, &c->mb->pp[svc][cfg], sizeof(k));
	n = k.rounds < c->o.rounds ? k.rounds : c->o.rounds;
	r->rounds = n;
	r->skipped = k.skipped != 0;
	r->hp_changes = p->hp_changes;
	r->hp_last_ns = p->hp_last_ns;
	if (!n)
		return;
	s = mem_gpa(&c->vmm, VMM_SAMPLES_GPA + 8ull * c->mb->samples_max * 3 *
					       (svc * VMM_PP_CFGS + cfg),
		    8ull * c->mb->samples_max * 3);
	stall_cpu(c, s + c->mb->samples_max, s + 2 * c->mb->samples_max, n, r);
	r->sorted_ns = malloc(n * sizeof(*r->sorted_ns));
	if (!r->sorted_ns)
		die("pingpong summary", ENOMEM);
	for (uint64_t i = 0; i < n; i++)
		r->sorted_ns[i] = tsc_to_ns(c, s[i]);
	qsort(r->sorted_ns, n, sizeof(*r->sorted_ns), cmp_i64);
	r->p50_ns = (uint64_t)r->sorted_ns[n / 2];
	r->p99_ns = (uint64_t)r->sorted_ns[n * 99 / 100];
	r->max_ns = (uint64_t)r->sorted_ns[n - 1];
	r->run_ns = (uint64_t)tsc_to_ns(c, (int64_t)k.run_tsc);
	rt = (double)n;
	host_ns = kvm_delta(p, ST_POLL_SUCCESS_NS) + kvm_delta(p, ST_POLL_FAIL_NS);
	r->host_poll_ns_per_rtt = (double)host_ns / rt;
	if (r->run_ns) {
		r->guest_poll_cpu_raw = (double)tsc_to_ns(c, (int64_t)k.poll_tsc) /
					(double)r->run_ns;
		r->host_poll_cpu = (double)host_ns / (double)r->run_ns;
	}
	r->halt_exits_per_rtt = (double)kvm_delta(p, ST_HALT_EXITS) / rt;
	r->successful_poll_per_rtt =
		(double)kvm_delta(p, ST_HALT_SUCCESSFUL_POLL) / rt;
	r->polled_share = (double)k.polled / (double)n;
}

static void json_row(const struct ctx *c, uint32_t svc, uint32_t cfg,
		     const struct pp_result *r)
{
	printf("{\"config\": \"%s\", \"service_us\": %u", pp_names[cfg],
	       c->o.services_us[svc]);
	if (r->error) {
		/* error text is ours (strerror and fixed words): no quotes */
		printf(", \"error\": \"%s\"}", r->error);
		return;
	}
	printf(", \"round_trips\": %" PRIu64 ", \"rtt_p50_ns\": %" PRIu64
	       ", \"rtt_p99_ns\": %" PRIu64 ", \"rtt_max_ns\": %" PRIu64
	       ", \"guest_poll_cpu\": %.4f, \"host_poll_cpu\": %.4f"
	       ", \"halt_exits_per_rtt\": %.3f"
	       ", \"halt_successful_poll_per_rtt\": %.3f"
	       ", \"guest_poll_ns_per_rtt\": %.0f, \"host_poll_ns_per_rtt\": %.0f"
	       ", \"polled_share\": %.3f, \"run_ns\": %" PRIu64
	       ", \"guest_poll_cpu_raw\": %.4f, \"stalled_round_trips\": %" PRIu64
	       ", \"guest_poll_ns_mean\": %.0f",
	       r->rounds, r->p50_ns, r->p99_ns, r->max_ns, r->guest_poll_cpu,
	       r->host_poll_cpu, r->halt_exits_per_rtt,
	       r->successful_poll_per_rtt, r->guest_poll_ns_per_rtt,
	       r->host_poll_ns_per_rtt, r->polled_share, r->run_ns,
	       r->guest_poll_cpu_raw, r->stalled, r->guest_poll_ns_mean);
	printf(", \"kvm\": {");
	for (int j = 0; j < NSTATS; j++)
		printf("%s\"%s\": %" PRIu64, j ? ", " : "", stat_names[j],
		       kvm_delta(&c->pp[svc][cfg], j));
	printf("}");
	if (c->pp[svc][cfg].have_hist) {
		static const char *const h[3] = { "poll_success", "poll_fail",
						  "wait" };
		const struct pp_phase *p = &c->pp[svc][cfg];

		/* log2 ns buckets: [0] = 0, [i] = [2^(i-1), 2^i) */
		printf(", \"kvm_hist\": {");
		for (int j = 0; j < 3; j++) {
			printf("%s\"%s\": [", j ? ", " : "", h[j]);
			for (int b = 0; b < HP_HIST_N; b++)
				printf("%s%" PRIu64, b ? ", " : "",
				       p->hist_after[j][b] - p->hist_before[j][b]);
			printf("]");
		}
		printf("}");
	}
	if (cfg == VMM_PP_HOST_POLL_SMART)
		printf(", \"halt_poll_changes\": %" PRIu64
		       ", \"halt_poll_last_ns\": %" PRIu64,
		       r->hp_changes, r->hp_last_ns);
	printf("}");
}

static void pp_json(struct ctx *c, struct pp_result r[][VMM_PP_CFGS])
{
	int first = 1;

	printf("{\"workload\": \"pingpong\", \"tsc_khz\": %u, \"tsc_offset\": "
	       "%lld, \"rounds\": %u, \"warmup\": %u, \"guest_halt_cost_ns\": "
	       "%" PRIu64 ", \"host_halt_cost_ns\": %" PRIu64
	       ", \"pingpong\": [",
	       c->tsc_khz, (long long)c->tsc_offset[0], c->o.rounds,
	       c->o.warmup, c->o.halt_cost_ns, c->o.host_halt_cost_ns);
	for (uint32_t s = 0; s < c->o.nservices; s++) {
		for (uint32_t i = 0; i < VMM_PP_CFGS; i++) {
			if (!r[s][i].ran)
				continue;
			printf("%s\n  ", first ? "" : ",");
			json_row(c, s, i, &r[s][i]);
			first = 0;
		}
	}
	printf("\n]}\n");
}

static void pp_table(struct ctx *c, struct pp_result r[][VMM_PP_CFGS])
{
	printf("exitless-vmm pingpong: vCPU on CPU %d, device on CPU %d, %u "
	       "round trips per row (after %u warm-up), TSC %u kHz, guest H "
	       "%" PRIu64 " us, host H %" PRIu64 " us\n",
	       c->o.cpus[0], c->o.agent_cpu, c->o.rounds, c->o.warmup,
	       c->tsc_khz, c->o.halt_cost_ns / 1000,
	       c->o.host_halt_cost_ns / 1000);
	printf("  %-7s %-16s %9s %9s %10s %10s %8s %8s %8s\n", "service",
	       "config", "p50 us", "p99 us", "guest cpu", "host cpu",
	       "halts/rt", "okpoll/rt", "polled");
	for (uint32_t s = 0; s < c->o.nservices; s++) {
		for (uint32_t i = 0; i < VMM_PP_CFGS; i++) {
			const struct pp_result *p = &r[s][i];

			if (!p->ran)
				continue;
			printf("  %4u us %-16s ", c->o.services_us[s], pp_names[i]);
			if (p->error) {
				printf("error: %s\n", p->error);
				continue;
			}
			printf("%9.1f %9.1f %10.3f %10.3f %8.2f %8.2f %7.0f%%\n",
			       (double)p->p50_ns / 1e3, (double)p->p99_ns / 1e3,
			       p->guest_poll_cpu, p->host_poll_cpu,
			       p->halt_exits_per_rtt, p->successful_poll_per_rtt,
			       100.0 * p->polled_share);
		}
	}
	printf("  guest cpu: ring-3 polling over the waiting time of the "
	       "undisturbed round trips; host cpu: KVM halt polling over the "
	       "run (a share of one CPU)\n");
}

void print_pingpong(struct ctx *c, struct pp_result r[][VMM_PP_CFGS])
{
	if (c->o.json)
		pp_json(c, r);
	else
		pp_table(c, r);
}
