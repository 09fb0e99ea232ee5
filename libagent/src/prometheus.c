/* SPDX-License-Identifier: MIT */
/* A stats snapshot in the Prometheus text exposition format (version
 * 0.0.4): a formatting call only, no server; the VMM decides where the text
 * goes (a file for node_exporter's textfile collector, an HTTP handler). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

struct metric {
	const char *name;
	const char *type; /* counter or gauge */
	const char *help;
	size_t off;
};

#define M(field, type, help) \
	{ #field, type, help, offsetof(struct pvagent_stats, field) }

static const struct metric metrics[] = {
	M(fires, "counter", "Generations fired"),
	M(injections, "counter", "Injector calls (fires, handbacks, reject wakes)"),
	M(inject_errors, "counter", "Injector calls that failed"),
	M(batches, "counter", "io_uring submissions"),
	M(batched, "counter", "Injections sent in io_uring submissions"),
	M(scans, "counter", "Pending passes"),
	M(slot_reads, "counter", "Slot snapshots taken"),
	M(handbacks, "counter", "Generations handed back"),
	M(cancel_races, "counter", "Due but re-armed or cancelled meanwhile"),
	M(refires_refused, "counter", "Reads of a generation already fired"),
	M(unbound_pending, "counter", "Pending bits of slots with no injector"),
	M(promises_late, "counter", "Passes that began after the published next sync"),
	M(sleeps, "counter", "Adaptive sleeps"),
	M(wake_overshoot_max_ns, "gauge", "Worst observed wake-up overshoot (ns)"),
	M(wake_bound_ns, "gauge", "Wake-up overshoot bound now promised (ns)"),
	M(iter_bound_ns, "gauge", "Spin-pass bound now promised (ns)"),
	M(rejected_flags, "counter", "Generations rejected for unknown flag bits"),
	M(rejected_vector, "counter", "Generations rejected for their vector"),
	M(rejected_far, "counter", "Generations rejected as beyond the horizon"),
	M(torn_reads, "counter", "Reads whose seqlock never settled"),
	M(stray_pending, "counter", "Pending bits naming no slot"),
	M(past_arms, "counter", "Generations already due when first read"),
	M(cpu_ns, "counter", "CPU time of the agent thread (ns)"),
	M(run_ns, "counter", "Wall time the agent thread ran (ns)"),
	M(fire_rereads, "counter", "Slot re-reads at fire time"),
	M(backoffs, "counter", "Parkings of a misbehaving slot"),
	M(withdrawals, "counter", "Slot promises withdrawn for misbehaving"),
	M(budget_stops, "counter", "Area passes cut short by the read budget"),
	M(reject_wakes, "counter", "Wake interrupts for rejected generations"),
	M(parked_pending, "counter", "Pending bits of parked slots, not read"),
	M(publishes, "counter", "Promises written to the area headers"),
};

/* Appends like snprintf: *len counts every byte wanted, writing only what
 * fits (NUL-terminated); *len grows past size when the buffer is short. */
static void emit(char *buf, size_t size, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void emit(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*len < size ? buf + *len : NULL,
		      *len < size ? size - *len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len += (size_t)n;
}

/* A label set goes inside the braces verbatim: it must be one, i.e. not
 * break out of them or the line. */
static int labels_valid(const char *labels)
{
	return !strpbrk(labels, "{}\n");
}

int pvagent_stats_format_prometheus(const struct pvagent_stats *const *stats,
				  const char *const *labels, size_t n,
				  char *buf, size_t size)
{
	size_t len = 0;

	if (!stats || !n || (size && !buf))
		return -EINVAL;
	for (size_t k = 0; k < n; k++)
		if (!stats[k] || stats[k]->sz < offsetof(struct pvagent_stats, fire_rereads) ||
		    (labels && labels[k] && !labels_valid(labels[k])))
			return -EINVAL;
	if (size)
		buf[0] = '\0';
	/* one group per family: its HELP and TYPE, then every snapshot's
	 * sample (the format wants a family's lines together) */
	for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
		const struct metric *m = &metrics[i];

		/* counters end in _total, as the naming conventions ask */
		const char *suffix = m->type[0] == 'c' ? "_total" : "";

		emit(buf, size, &len, "# HELP exitless_agent_%s%s %s\n"
		     "# TYPE exitless_agent_%s%s %s\n", m->name, suffix, m->help,
		     m->name, suffix, m->type);
		for (size_t k = 0; k < n; k++) {
			const char *l = labels && labels[k] ? labels[k] : "";
			uint64_t v = 0;

			/* an older caller's snapshot lacks the newer fields */
			if (m->off + sizeof(uint64_t) <= stats[k]->sz)
				memcpy(&v, (const char *)stats[k] + m->off, sizeof(v));
			emit(buf, size, &len, "exitless_agent_%s%s%s%s%s %llu\n",
			     m->name, suffix, *l ? "{" : "", l, *l ? "}" : "",
			     (unsigned long long)v);
		}
	}
	/* lateness: bucket b counts [2^b, 2^(b+1)) ns, so its upper edge is
	 * the cumulative "le" of a Prometheus histogram, in seconds. Only the
	 * log2 buckets are kept, not the sum: _sum is left out rather than
	 * made up. */
	emit(buf, size, &len,
	     "# HELP exitless_agent_lateness_seconds Fire lateness from "
	     "max(deadline, first read)\n"
	     "# TYPE exitless_agent_lateness_seconds histogram\n");
	for (size_t k = 0; k < n; k++) {
		const char *l = labels && labels[k] ? labels[k] : "";
		const char *sep = *l ? "," : "";
		uint64_t cum = 0;

		for (uint32_t b = 0; b < PVAGENT_LAT_BUCKETS; b++) {
			cum += stats[k]->late_hist[b];
			emit(buf, size, &len,
			     "exitless_agent_lateness_seconds_bucket{%s%sle=\"%.9g\"} %llu\n",
			     l, sep, (double)(2ull << b) / 1e9,
			     (unsigned long long)cum);
		}
		emit(buf, size, &len,
		     "exitless_agent_lateness_seconds_bucket{%s%sle=\"+Inf\"} %llu\n"
		     "exitless_agent_lateness_seconds_count%s%s%s %llu\n",
		     l, sep, (unsigned long long)cum, *l ? "{" : "", l,
		     *l ? "}" : "", (unsigned long long)cum);
	}
	return len > (size_t)0x7fffffff ? -EOVERFLOW : (int)len;
}
