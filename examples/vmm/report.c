/* SPDX-License-Identifier: MIT */
/* exitless-vmm's report: each configuration's guest counters, KVM
 * statistics and lateness samples pooled over the vCPUs, then printed side
 * by side (a table, or JSON for scripts). Runs after the guest is done;
 * what the guest wrote is copied before it is trusted. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exitless/idlepoll.h>

#include "app.h"

const char *const stat_names[] = {
	"exits",	  "halt_exits",		  "insn_emulation",
	"irq_injections", "io_exits",		  "halt_successful_poll",
	"halt_wakeup",	  "halt_poll_success_ns", "halt_poll_fail_ns",
	"halt_attempted_poll", "halt_poll_invalid", "halt_wait_ns",
};
_Static_assert(sizeof(stat_names) / sizeof(stat_names[0]) == NSTATS,
	       "NSTATS and stat_names disagree");

static const char *const cfg_names[VMM_CFG_COUNT] = { "plain", "exitless" };
static const char *const reason_names[VMM_REASONS] = {
	"?", "disabled", "past", "too_far", "stale", "too_close", "rejected",
	"fired",
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Samples are guest-written: in floating point so that no value, however
 * wild, overflows (UBSan builds run this). */
int64_t tsc_to_ns(const struct ctx *c, int64_t t)
{
	double ns = (double)t * 1e6 / (double)c->tsc_khz;

	if (ns > 9e18)
		return INT64_MAX;
	if (ns < -9e18)
		return INT64_MIN;
	return (int64_t)ns;
}

/* One configuration over all vCPUs: counters summed, samples pooled. */
void summarize(struct ctx *c, int rep, uint32_t cfg, struct result *r)
{
	uint64_t total = 0, *sum = (uint64_t *)&r->k;
	int64_t *all;

	all = calloc((size_t)c->o.vcpus * c->o.timers, sizeof(*all));
	if (!all)
		die("summary", ENOMEM);
	for (int v = 0; v < c->o.vcpus; v++) {
		struct vmm_counters k;
		const uint64_t *add = (const uint64_t *)&k;
		int64_t *s = mem_gpa(&c->vmm,
				     VMM_SAMPLES_GPA +
					     8ull * c->mb->samples_max *
						     (((uint64_t)rep * c->o.vcpus + v) *
							      VMM_CFG_COUNT + cfg),
				     8ull * c->o.timers);
		uint64_t n;

		/* guest-written: copy once, then trust only the copy */
		memcpy(&k, rep ? &c->mb->rep[rep - 1][v][cfg] : &c->mb->cfg[v][cfg],
		       sizeof(k));
		for (size_t i = 0; i < sizeof(k) / sizeof(uint64_t); i++)
			sum[i] += add[i];
		for (size_t i = 0; i < NSTATS; i++) {
			if (c->after[v][rep][cfg][i] == UINT64_MAX ||
			    r->kvm[i] == UINT64_MAX)
				r->kvm[i] = UINT64_MAX;
			else
				r->kvm[i] += c->after[v][rep][cfg][i] -
					     c->before[v][rep][cfg][i];
		}
		n = k.timers < c->o.timers ? k.timers : c->o.timers;
		memcpy(all + total, s, n * sizeof(*s));
		total += n;
	}
	r->lost = (uint64_t)c->o.vcpus * c->o.timers - total;
	if (total) {
		qsort(all, total, sizeof(*all), cmp_i64);
		r->p50_ns = (uint64_t)tsc_to_ns(c, all[total / 2]);
		r->p99_ns = (uint64_t)tsc_to_ns(c, all[total * 99 / 100]);
		r->max_ns = (uint64_t)tsc_to_ns(c, all[total - 1]);
		for (uint64_t i = 0; i < total; i++)
			all[i] = tsc_to_ns(c, all[i]);
	}
	r->sorted_ns = all; /* the caller frees it */
	r->n = total;
}

static uint64_t guest_exit_ops(const struct vmm_counters *k)
{
	/* what the guest did that exits on any KVM: timer wrmsr, EOI wrmsr,
	 * hlt (the ud2 traps are not exits on bare-metal KVM) */
	return k->tsc_wrmsr + k->eoi_wrmsr + k->hlt;
}

static void row(const char *name, const struct result *r, int have[2],
		uint64_t (*get)(const struct result *))
{
	uint64_t v[2] = { 0, 0 };

	printf("  %-26s", name);
	for (int i = 0; i < 2; i++) {
		if (!have[i]) {
			printf(" %12s", "-");
			continue;
		}
		v[i] = get(&r[i]);
		if (v[i] == UINT64_MAX)
			printf(" %12s", "n/a");
		else
			printf(" %12" PRIu64, v[i]);
	}
	if (have[0] && have[1] && v[0] && v[0] != UINT64_MAX &&
	    v[1] != UINT64_MAX)
		printf(" %10.3f", (double)v[1] / (double)v[0]);
	printf("\n");
}

#define GETTER(fn, expr)                                                      \
	static uint64_t fn(const struct result *r) { return (expr); }
GETTER(g_timers, r->k.timers)
GETTER(g_lost, r->lost)
GETTER(g_exits, r->kvm[0])
GETTER(g_halt_exits, r->kvm[1])
GETTER(g_insn, r->kvm[2])
GETTER(g_irqinj, r->kvm[3])
GETTER(g_io, r->kvm[4])
GETTER(g_hpoll, r->kvm[5])
GETTER(g_hpoll_us, (r->kvm[ST_POLL_SUCCESS_NS] == UINT64_MAX ||
		    r->kvm[ST_POLL_FAIL_NS] == UINT64_MAX) ? UINT64_MAX :
		   (r->kvm[ST_POLL_SUCCESS_NS] + r->kvm[ST_POLL_FAIL_NS]) / 1000)
GETTER(g_wrmsr_tsc, r->k.tsc_wrmsr)
GETTER(g_wrmsr_eoi, r->k.eoi_wrmsr)
GETTER(g_hlt, r->k.hlt)
GETTER(g_traps, r->k.traps)
GETTER(g_exitops, guest_exit_ops(&r->k))
GETTER(g_pv, r->k.pv_arms)
GETTER(g_fb, r->k.fallbacks)
GETTER(g_pvf, r->k.pv_fired)
GETTER(g_polled, r->k.polled)
GETTER(g_skipped, r->k.eoi_skipped)
GETTER(g_dpoll, r->k.deadline_polls)
GETTER(g_p50, r->p50_ns / 1000)
GETTER(g_p99, r->p99_ns / 1000)

static double pct(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0.0;
}

/* The agent's counters are cumulative over its runs: one repetition's. */
static struct pvagent_stats agent_delta(const struct ctx *c, int rep)
{
	struct pvagent_stats a = c->agent_rep[rep];

	if (rep > 0) {
		const struct pvagent_stats *b = &c->agent_rep[rep - 1];

		a.fires -= b->fires;
		a.injections -= b->injections;
		a.inject_errors -= b->inject_errors;
		a.promises_late -= b->promises_late;
	}
	return a;
}

void print_table(struct ctx *c, struct result *r, int have[2], int rep)
{
	char cpus[32], hb[32];

	if (c->o.vcpus > 1)
		snprintf(cpus, sizeof(cpus), "s on CPUs %d,%d", c->o.cpus[0],
			 c->o.cpus[1]);
	else
		snprintf(cpus, sizeof(cpus), " on CPU %d", c->o.cpus[0]);
	printf("exitless-vmm: %d vCPU%s, %u timers per configuration per "
	       "vCPU, deadlines %u-%u us, TSC %u kHz\n",
	       c->o.vcpus, cpus, c->o.timers, c->o.min_us, c->o.max_us,
	       c->tsc_khz);
	if (c->o.agent_cpu >= 0)
		snprintf(cpus, sizeof(cpus), "on CPU %d", c->o.agent_cpu);
	else
		snprintf(cpus, sizeof(cpus), "unpinned");
	printf("  exitless: agent %s%s %s, inject %s, idlepoll %s "
	       "(H %" PRIu64 " us)\n",
	       c->o.adaptive ? "adaptive" : "dedicated",
	       c->pvagent_stats.sched_applied && c->o.fifo ? " SCHED_FIFO" : "",
	       cpus,
	       c->o.inject_msi ? "KVM_SIGNAL_MSI" : "irqfd",
	       idlepoll_policy_name(c->o.idle_policy),
	       c->o.halt_cost_ns / 1000);
	if (c->o.nhp)
		printf("  host halt polling: %s (ceiling changes: plain %" PRIu64
		       ", exitless %" PRIu64 ")\n",
		       hp_name(&c->o.hp[rep], hb, sizeof(hb)),
		       c->hp_changes[rep][0], c->hp_changes[rep][1]);
	printf("  %-26s %12s %12s %10s\n", "", "plain KVM", "exitless",
	       "ratio");
	row("timers", r, have, g_timers);
	row("lost", r, have, g_lost);
	row("kvm exits", r, have, g_exits);
	row("kvm halt_exits", r, have, g_halt_exits);
	row("kvm insn_emulation", r, have, g_insn);
	row("kvm irq_injections", r, have, g_irqinj);
	row("kvm io_exits", r, have, g_io);
	row("kvm halt_successful_poll", r, have, g_hpoll);
	row("kvm halt-poll us (ok+fail)", r, have, g_hpoll_us);
	row("guest wrmsr TSC_DEADLINE", r, have, g_wrmsr_tsc);
	row("guest wrmsr EOI", r, have, g_wrmsr_eoi);
	row("guest EOIs skipped (PV EOI)", r, have, g_skipped);
	row("guest hlt", r, have, g_hlt);
	row("guest ud2 traps", r, have, g_traps);
	row("guest exit-causing ops", r, have, g_exitops);
	row("pvtimer arms", r, have, g_pv);
	row("timers on LAPIC timer", r, have, g_fb);
	row("timers fired by the agent", r, have, g_pvf);
	row("waits ended in poll", r, have, g_polled);
	row("waits polled to deadline", r, have, g_dpoll);
	row("lateness p50 us", r, have, g_p50);
	row("lateness p99 us", r, have, g_p99);
	for (int i = 0; i < 2; i++) {
		if (!have[i])
			continue;
		printf("  %-9s fallback rate %.1f%%", cfg_names[i],
		       pct(r[i].k.fallbacks, r[i].k.timers));
		if (i == VMM_CFG_EXITLESS) {
			printf(" (");
			for (int j = 1; j < VMM_REASONS; j++)
				printf("%s%s %" PRIu64, j > 1 ? ", " : "",
				       reason_names[j], r[i].k.reasons[j]);
			printf("), handbacks %" PRIu64 ", spurious %" PRIu64,
			       r[i].k.handbacks, r[i].k.spurious);
		}
		printf(", lateness max %" PRIu64 " us\n", r[i].max_ns / 1000);
	}
	if (have[VMM_CFG_EXITLESS]) {
		struct pvagent_stats a = agent_delta(c, rep);

		printf("  agent: fires %" PRIu64 ", injections %" PRIu64
		       ", inject errors %" PRIu64 ", promises late %" PRIu64
		       "\n", a.fires, a.injections, a.inject_errors,
		       a.promises_late);
	}
	if (have[0] && have[1] && guest_exit_ops(&r[0].k) && r[0].kvm[1] &&
	    r[0].p50_ns)
		printf("ratio exitless/plain: guest exit-causing ops %.3f, "
		       "halt_exits %.3f, irq_injections %.3f, lateness p50 "
		       "%.3f, p99 %.3f\n",
		       (double)guest_exit_ops(&r[1].k) /
			       (double)guest_exit_ops(&r[0].k),
		       (double)r[1].kvm[1] / (double)r[0].kvm[1],
		       (double)r[1].kvm[3] / (double)(r[0].kvm[3] ? r[0].kvm[3] : 1),
		       (double)r[1].p50_ns / (double)r[0].p50_ns,
		       (double)r[1].p99_ns / (double)(r[0].p99_ns ? r[0].p99_ns : 1));
	print_exit_ops(c, r, have, rep);
}

static void json_config(struct ctx *c, const struct result *r, int rep,
			int i)
{
	char hb[32];

	if (c->o.nhp)
		printf("\"%s@%s\": {\"halt_poll\": \"%s\", \"halt_poll_changes\": %"
		       PRIu64 ", ", cfg_names[i],
		       hp_name(&c->o.hp[rep], hb, sizeof(hb)),
		       hp_name(&c->o.hp[rep], hb, sizeof(hb)),
		       c->hp_changes[rep][i]);
	else
		printf("\"%s\": {", cfg_names[i]);
	printf("\"timers\": %" PRIu64 ", \"lost\": %" PRIu64, r->k.timers,
	       r->lost);
	for (size_t j = 0; j < NSTATS; j++)
		if (r->kvm[j] != UINT64_MAX)
			printf(", \"kvm_%s\": %" PRIu64, stat_names[j],
			       r->kvm[j]);
	printf(", \"wrmsr_tsc_deadline\": %" PRIu64
	       ", \"wrmsr_eoi\": %" PRIu64 ", \"hlt\": %" PRIu64
	       ", \"traps\": %" PRIu64 ", \"pv_arms\": %" PRIu64
	       ", \"fallbacks\": %" PRIu64 ", \"polled\": %" PRIu64
	       ", \"handbacks\": %" PRIu64 ", \"spurious\": %" PRIu64
	       ", \"pv_fired\": %" PRIu64 ", \"lapic_fired\": %" PRIu64
	       ", \"early\": %" PRIu64
	       ", \"backstop_arms\": %" PRIu64 ", \"backstop_irqs\": %" PRIu64
	       ", \"backstop_fired\": %" PRIu64
	       ", \"eoi_skipped\": %" PRIu64 ", \"deadline_polls\": %" PRIu64
	       ", \"lapic_cancels\": %" PRIu64 ", \"pv_eoi_vcpus\": %" PRIu64
	       ", \"late_p50_ns\": %" PRIu64 ", \"late_p99_ns\": %" PRIu64
	       ", \"late_max_ns\": %" PRIu64,
	       r->k.tsc_wrmsr, r->k.eoi_wrmsr, r->k.hlt,
	       r->k.traps, r->k.pv_arms, r->k.fallbacks,
	       r->k.polled, r->k.handbacks, r->k.spurious,
	       r->k.pv_fired, r->k.lapic_fired, r->k.early,
	       r->k.backstop_arms, r->k.backstop_irqs, r->k.backstop_fired,
	       r->k.eoi_skipped, r->k.deadline_polls, r->k.lapic_cancels,
	       r->k.pv_eoi, r->p50_ns, r->p99_ns, r->max_ns);
	printf(", \"fallback_reasons\": {");
	for (int j = 1; j < VMM_REASONS; j++)
		printf("%s\"%s\": %" PRIu64, j > 1 ? ", " : "",
		       reason_names[j], r->k.reasons[j]);
	printf("}");
	json_exit_ops(c, r, rep, i);
	if (i == VMM_CFG_EXITLESS) {
		struct pvagent_stats a = agent_delta(c, rep);

		printf(", \"agent\": {\"fires\": %" PRIu64 ", \"injections\": %"
		       PRIu64 ", \"inject_errors\": %" PRIu64
		       ", \"promises_late\": %" PRIu64 "}",
		       a.fires, a.injections, a.inject_errors, a.promises_late);
	}
	printf("}");
}

void print_json_configs(struct ctx *c, struct result r[][VMM_CFG_COUNT],
			int have[][VMM_CFG_COUNT])
{
	int first = 1, any_exitless = 0, nrep = c->o.nhp ? c->o.nhp : 1;

	printf("{\"vcpus\": %d, \"timers\": %u, \"min_us\": %u, "
	       "\"max_us\": %u, \"tsc_khz\": %u, \"tsc_offset\": %lld",
	       c->o.vcpus, c->o.timers, c->o.min_us, c->o.max_us,
	       c->tsc_khz, (long long)c->tsc_offset[0]);
	json_exit_ops_run(c);
	printf(", \"configs\": {");
	for (int rep = 0; rep < nrep; rep++) {
		for (int i = 0; i < 2; i++) {
			if (!have[rep][i])
				continue;
			printf("%s", first ? "" : ", ");
			json_config(c, &r[rep][i], rep, i);
			first = 0;
			any_exitless |= i == VMM_CFG_EXITLESS;
		}
	}
	printf("}");
	if (any_exitless)
		printf(", \"agent\": {\"fires\": %" PRIu64
		       ", \"injections\": %" PRIu64 ", \"inject_errors\": %" PRIu64
		       ", \"promises_late\": %" PRIu64
		       ", \"iter_bound_ns\": %" PRIu64 "}",
		       c->pvagent_stats.fires, c->pvagent_stats.injections,
		       c->pvagent_stats.inject_errors,
		       c->pvagent_stats.promises_late,
		       c->pvagent_stats.iter_bound_ns);
	printf("}\n");
}
