/* SPDX-License-Identifier: MIT */
/* exitless-vmm: a sample VMM on /dev/kvm that runs the same guest timer
 * workload twice, on the plain LAPIC TSC-deadline timer and on the exitless
 * path (pvtimer area + libagent + libidlepoll in the guest), and prints the
 * two side by side. Policy lives here: CPU placement, the watchdog, what is
 * fatal (everything: this is an example, it exits with a message).
 *
 * Exit status: 0 success, 1 error, 77 when /dev/kvm is absent or unusable
 * (so a test can skip). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <exitless/agent.h>
#include <exitless/idlepoll.h>
#include <exitless/pvtimer.h>

#include "vmm.h"

#ifndef VMM_GUEST_PATH
#define VMM_GUEST_PATH "guest.bin"
#endif

#define EXIT_SKIP 77
#define CPU_AUTO (-2)
#define PV_GSI 1

static const char *const stat_names[] = {
	"exits",	  "halt_exits",		  "insn_emulation",
	"irq_injections", "io_exits",		  "halt_successful_poll",
	"halt_wakeup",
};
#define NSTATS (sizeof(stat_names) / sizeof(stat_names[0]))

static const char *const cfg_names[VMM_CFG_COUNT] = { "plain", "exitless" };
static const char *const reason_names[VMM_REASONS] = {
	"?", "disabled", "past", "too_far", "stale", "too_close", "rejected",
	"?",
};

struct opts {
	uint32_t timers, min_us, max_us, configs, idle_policy;
	uint64_t halt_cost_ns, poll_slack_ns, seed, margin_ns;
	int json, inject_msi, adaptive, fifo, timeout_s, vcpu_cpu, agent_cpu;
	const char *guest;
};

struct ctx {
	struct opts o;
	struct vmm vmm;
	struct vcpu vcpu;
	struct stats stats;
	struct pvtimer_area *area;
	struct agent *agent;
	struct vmm_mailbox *mb;
	uint32_t tsc_khz;
	int efd;
	int agent_running;
	uint64_t before[VMM_CFG_COUNT][NSTATS], after[VMM_CFG_COUNT][NSTATS];
	int ran[VMM_CFG_COUNT];
	struct agent_stats agent_stats;
	char line[256];
	size_t line_len;
	uint32_t guest_status;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "exitless-vmm: %s: %s\n", what, strerror(err));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: exitless-vmm [options]\n"
		"  --timers N          timers per configuration (1000)\n"
		"  --min-us N          shortest deadline from arm (50)\n"
		"  --max-us N          longest deadline from arm (2000)\n"
		"  --config LIST       plain,exitless (both)\n"
		"  --inject irqfd|msi  how the agent injects (irqfd)\n"
		"  --agent-mode dedicated|adaptive  (dedicated; adaptive when\n"
		"                      only one CPU is allowed)\n"
		"  --idle-policy NAME  libidlepoll policy in the guest (smart)\n"
		"  --halt-cost-us N    idlepoll's halt cost H (100: a trap into\n"
		"                      emulated ring 0 ~50 us + a wake-up 15-60 us)\n"
		"  --poll-slack-us N   polling may run this far past the deadline (100)\n"
		"  --margin-us N       pvtimer margin (5)\n"
		"  --vcpu-cpu N        host CPU of the vCPU thread (first allowed)\n"
		"  --agent-cpu N       host CPU of the agent (second allowed; -1: any)\n"
		"  --seed N            deadline sequence (1)\n"
		"  --timeout S         watchdog (120)\n"
		"  --guest PATH        payload (%s)\n"
		"  --fifo              agent thread SCHED_FIFO (if permitted)\n"
		"  --json              machine-readable output\n",
		VMM_GUEST_PATH);
}

static uint64_t num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s || *s == '-') {
		fprintf(stderr, "exitless-vmm: bad %s: %s\n", what, s);
		exit(1);
	}
	return v;
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "timers", 1, 0, 't' },     { "min-us", 1, 0, 'a' },
		{ "max-us", 1, 0, 'b' },     { "config", 1, 0, 'c' },
		{ "inject", 1, 0, 'i' },     { "agent-mode", 1, 0, 'm' },
		{ "idle-policy", 1, 0, 'p' }, { "halt-cost-us", 1, 0, 'h' },
		{ "poll-slack-us", 1, 0, 's' }, { "margin-us", 1, 0, 'g' },
		{ "vcpu-cpu", 1, 0, 'v' },   { "agent-cpu", 1, 0, 'A' },
		{ "seed", 1, 0, 'S' },       { "timeout", 1, 0, 'T' },
		{ "guest", 1, 0, 'G' },      { "json", 0, 0, 'j' },
		{ "fifo", 0, 0, 'F' },
		{ "help", 0, 0, '?' },       { 0, 0, 0, 0 },
	};
	int c, p;

	*o = (struct opts){ .timers = 1000, .min_us = 50, .max_us = 2000,
			    .configs = 3, .idle_policy = IDLEPOLL_POLICY_SMART,
			    .halt_cost_ns = 100000, .poll_slack_ns = 100000,
			    .seed = 1, .margin_ns = 5000, .timeout_s = 120,
			    .vcpu_cpu = CPU_AUTO, .agent_cpu = CPU_AUTO,
			    .adaptive = -1,
			    .guest = VMM_GUEST_PATH };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 't': o->timers = (uint32_t)num(optarg, "--timers"); break;
		case 'a': o->min_us = (uint32_t)num(optarg, "--min-us"); break;
		case 'b': o->max_us = (uint32_t)num(optarg, "--max-us"); break;
		case 'c':
			o->configs = 0;
			if (strstr(optarg, "plain"))
				o->configs |= 1u << VMM_CFG_PLAIN;
			if (strstr(optarg, "exitless"))
				o->configs |= 1u << VMM_CFG_EXITLESS;
			break;
		case 'i': o->inject_msi = strcmp(optarg, "msi") == 0; break;
		case 'm': o->adaptive = strcmp(optarg, "adaptive") == 0; break;
		case 'p':
			p = idlepoll_policy_from_name(optarg);
			if (p < 0) {
				fprintf(stderr, "exitless-vmm: unknown policy %s\n",
					optarg);
				exit(1);
			}
			o->idle_policy = (uint32_t)p;
			break;
		case 'h': o->halt_cost_ns = num(optarg, "--halt-cost-us") * 1000; break;
		case 's': o->poll_slack_ns = num(optarg, "--poll-slack-us") * 1000; break;
		case 'g': o->margin_ns = num(optarg, "--margin-us") * 1000; break;
		case 'v': o->vcpu_cpu = (int)num(optarg, "--vcpu-cpu"); break;
		case 'A':
			o->agent_cpu = strcmp(optarg, "-1") == 0 ?
					       -1 : (int)num(optarg, "--agent-cpu");
			break;
		case 'S': o->seed = num(optarg, "--seed"); break;
		case 'T': o->timeout_s = (int)num(optarg, "--timeout"); break;
		case 'G': o->guest = optarg; break;
		case 'j': o->json = 1; break;
		case 'F': o->fifo = 1; break;
		default: usage(); exit(c == '?' ? 1 : 0);
		}
	}
	if (optind != argc || !o->timers || !o->configs ||
	    o->max_us < o->min_us || !o->min_us || o->max_us > 10000000) {
		usage();
		exit(1);
	}
}

/* ---- watchdog: a lost timer leaves the guest halted for ever ------------ */

static struct kvm_run *volatile watchdog_run;
static volatile sig_atomic_t watchdog_fired;

static void on_alarm(int sig)
{
	(void)sig;
	watchdog_fired = 1;
	/* KVM_RUN returns -EINTR now, or at once if entered after this */
	if (watchdog_run)
		watchdog_run->immediate_exit = 1;
}

/* Helper threads (the agent's) must not take SIGALRM: only the vCPU thread
 * can turn it into an exit from KVM_RUN. */
static void alarm_mask(int how)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGALRM);
	pthread_sigmask(how, &s, NULL);
}

/* ---- the guest's port writes ------------------------------------------- */

static void console_byte(struct ctx *c, char ch)
{
	if (ch != '\n' && c->line_len < sizeof(c->line) - 1) {
		c->line[c->line_len++] = ch;
		return;
	}
	c->line[c->line_len] = 0;
	fprintf(stderr, "%s\n", c->line);
	c->line_len = 0;
}

static int phase(struct ctx *c, uint32_t v)
{
	uint32_t cfg = v & ~VMM_PHASE_END;
	int rc;

	if (cfg >= VMM_CFG_COUNT)
		return -EPROTO;
	if (!(v & VMM_PHASE_END)) {
		if (cfg == VMM_CFG_EXITLESS) {
			alarm_mask(SIG_BLOCK);
			rc = agent_start(c->agent);
			alarm_mask(SIG_UNBLOCK);
			if (rc)
				return rc;
			c->agent_running = 1;
		}
		/* after the agent started: its start-up is not the guest's */
		return stats_read(&c->stats, c->before[cfg]);
	}
	rc = stats_read(&c->stats, c->after[cfg]);
	if (rc)
		return rc;
	c->ran[cfg] = 1;
	if (cfg == VMM_CFG_EXITLESS && c->agent_running) {
		c->agent_stats.sz = sizeof(c->agent_stats);
		rc = agent_get_stats(c->agent, &c->agent_stats);
		if (!rc)
			rc = agent_stop(c->agent);
		c->agent_running = 0;
	}
	return rc;
}

static int on_io(void *opaque, uint16_t port, uint32_t value)
{
	struct ctx *c = opaque;
	struct vmm_mailbox *mb = c->mb;

	switch (port) {
	case VMM_PORT_CONSOLE:
		console_byte(c, (char)value);
		return 0;
	case VMM_PORT_PHASE:
		return phase(c, value);
	case VMM_PORT_DONE:
		c->guest_status = value;
		return 1;
	case VMM_PORT_FATAL:
		fprintf(stderr,
			"exitless-vmm: guest exception %" PRIu64
			", frame %#" PRIx64 " %#" PRIx64 " %#" PRIx64 "\n",
			mb->fatal_vector, mb->fatal_word0, mb->fatal_word1,
			mb->fatal_word2);
		return -EFAULT;
	default:
		fprintf(stderr, "exitless-vmm: write to unknown port %#x\n",
			port);
		return -EPROTO;
	}
}

/* ---- set-up --------------------------------------------------------------- */

static void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		fprintf(stderr, "exitless-vmm: cannot pin the vCPU to CPU %d: %s\n",
			cpu, strerror(errno));
}

/* Defaults from the CPUs we may run on (CI containers restrict them): the
 * vCPU on the first, the agent on the second. With a single CPU a spinning
 * agent would take the vCPU's CPU away, so it sleeps (adaptive). */
static void place(struct opts *o)
{
	cpu_set_t set;
	int first = -1, second = -1;

	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		for (int i = 0; i < CPU_SETSIZE && second < 0; i++) {
			if (!CPU_ISSET(i, &set))
				continue;
			if (first < 0)
				first = i;
			else
				second = i;
		}
	}
	if (o->vcpu_cpu == CPU_AUTO)
		o->vcpu_cpu = first;
	if (o->agent_cpu == CPU_AUTO)
		o->agent_cpu = second >= 0 && second != o->vcpu_cpu ? second : -1;
	if (o->adaptive < 0)
		o->adaptive = o->agent_cpu < 0;
}

/* Everything that can fail because KVM here is missing or unusable exits
 * with EXIT_SKIP, so the test skips rather than fails on such machines. */
static void kvm_open(struct ctx *c)
{
	int v;

	c->vmm.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (c->vmm.kvm < 0) {
		fprintf(stderr, "exitless-vmm: /dev/kvm: %s\n", strerror(errno));
		exit(EXIT_SKIP);
	}
	v = ioctl(c->vmm.kvm, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION ||
	    ioctl(c->vmm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0 ||
	    ioctl(c->vmm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) <= 0 ||
	    ioctl(c->vmm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0 ||
	    ioctl(c->vmm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) <= 0) {
		fprintf(stderr, "exitless-vmm: KVM lacks a needed capability\n");
		exit(EXIT_SKIP);
	}
	c->vmm.vm = ioctl(c->vmm.kvm, KVM_CREATE_VM, 0);
	if (c->vmm.vm < 0) {
		fprintf(stderr, "exitless-vmm: KVM_CREATE_VM: %s\n",
			strerror(errno));
		exit(EXIT_SKIP);
	}
}

static void setup(struct ctx *c)
{
	struct vcpu_cpuid_pv pv = { .area_gpa = VMM_AREA_GPA, .slot = 0 };
	uint64_t entry;
	int rc;

	kvm_open(c);
	rc = irq_init(&c->vmm);
	if (rc)
		die("KVM_CREATE_IRQCHIP", -rc);
	rc = mem_init(&c->vmm, VMM_RAM_SIZE);
	if (rc)
		die("guest RAM", -rc);
	rc = mem_build_page_tables(&c->vmm);
	if (rc)
		die("page tables", -rc);
	rc = loader_load(&c->vmm, c->o.guest, &entry);
	if (rc) {
		fprintf(stderr, "exitless-vmm: loading %s: %s\n", c->o.guest,
			strerror(-rc));
		exit(1);
	}
	rc = vcpu_create(&c->vmm, 0, &c->vcpu);
	if (rc)
		die("KVM_CREATE_VCPU", -rc);
	c->tsc_khz = vcpu_tsc_khz(&c->vcpu);
	if (!c->tsc_khz)
		die("KVM_GET_TSC_KHZ", EINVAL);

	/* The pvtimer area: a sealed memfd the library makes, one slot,
	 * mapped as a second memory slot right after RAM. */
	{
		PVTIMER_AREA_OPTS(ao, .slot_count = 1, .tsc_khz = c->tsc_khz,
				  .margin_tsc = c->o.margin_ns * c->tsc_khz /
						1000000,
				  .features = PVTIMER_F_FIRED_TSC);

		rc = pvtimer_area_new(&ao, &c->area);
		if (rc)
			die("pvtimer_area_new", -rc);
	}
	rc = mem_add_region(&c->vmm, VMM_AREA_GPA, pvtimer_area_mem(c->area),
			    pvtimer_area_bytes(c->area));
	if (rc)
		die("mapping the pvtimer area", -rc);
	pv.area_pages = (uint32_t)(pvtimer_area_bytes(c->area) /
				   PVTIMER_ABI_PAGE_SIZE);
	rc = vcpu_setup(&c->vmm, &c->vcpu, entry, &pv);
	if (rc == -ENOTSUP) {
		fprintf(stderr, "exitless-vmm: no x2APIC or TSC-deadline timer\n");
		exit(EXIT_SKIP);
	}
	if (rc)
		die("vCPU set-up", -rc);
	rc = stats_open(&c->stats, c->vcpu.fd, stat_names, NSTATS);
	if (rc)
		die("KVM_GET_STATS_FD", -rc);

	c->mb = mem_gpa(&c->vmm, VMM_MAILBOX_GPA, sizeof(*c->mb));
	c->mb->magic = VMM_MAILBOX_MAGIC;
	c->mb->version = VMM_MAILBOX_VERSION;
	c->mb->timers = c->o.timers;
	c->mb->configs = c->o.configs;
	c->mb->min_us = c->o.min_us;
	c->mb->max_us = c->o.max_us;
	c->mb->tsc_khz = c->tsc_khz;
	c->mb->idle_policy = c->o.idle_policy;
	c->mb->halt_cost_ns = c->o.halt_cost_ns;
	c->mb->poll_slack_ns = c->o.poll_slack_ns;
	c->mb->seed = c->o.seed;
	c->mb->samples_gpa = VMM_SAMPLES_GPA;
	c->mb->samples_max = (VMM_RAM_SIZE - VMM_SAMPLES_GPA) / 8 / VMM_CFG_COUNT;
	if (c->o.timers > c->mb->samples_max) {
		fprintf(stderr, "exitless-vmm: at most %" PRIu64 " timers\n",
			c->mb->samples_max);
		exit(1);
	}
}

static void setup_agent(struct ctx *c)
{
	struct agent_injector inj = { .kind = AGENT_INJ_IRQFD };
	struct pvtimer_tsc_map map;
	int rc;
	AGENT_OPTS(ao, .mode = c->o.adaptive ? AGENT_MODE_ADAPTIVE :
					       AGENT_MODE_DEDICATED);

	if (c->o.fifo) {
		/* a spinning agent preempted by other work breaks its
		 * promises: guests fall back (stale) and timers run late */
		ao.sched_policy = SCHED_FIFO;
		ao.sched_priority = 10;
	}
	if (c->o.agent_cpu >= 0) {
		ao.cpu_policy = AGENT_CPU_FIXED;
		ao.cpu = c->o.agent_cpu;
	}
	if (c->o.inject_msi) {
		inj.kind = AGENT_INJ_MSI;
		inj.fd = c->vmm.vm;
		inj.msi_address = 0xfee00000u | ((uint32_t)c->vcpu.id << 12);
	} else {
		rc = irq_msi_irqfd(&c->vmm, PV_GSI, (uint32_t)c->vcpu.id,
				   VMM_VEC_PVTIMER, &c->efd);
		if (rc)
			die("irqfd", -rc);
		inj.fd = c->efd;
	}
	/* guest and host TSC agree here (offset 0, KVM-HERE.md) */
	rc = pvtimer_tsc_map_init(&map, c->tsc_khz, c->tsc_khz, 0);
	if (!rc)
		rc = agent_new(&ao, &c->agent);
	if (rc)
		die("agent_new", -rc);
	rc = agent_attach_area(c->agent, c->area, &map, NULL);
	if (!rc)
		rc = agent_bind_slot(c->agent, 0, 0, &inj);
	if (rc)
		die("agent set-up", -rc);
}

/* ---- report ----------------------------------------------------------- */

struct result {
	struct vmm_counters k;
	uint64_t kvm[NSTATS];
	uint64_t p50_ns, p99_ns, max_ns;
	uint64_t lost;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Samples are guest-written: in floating point so that no value, however
 * wild, overflows (UBSan builds run this). */
static int64_t tsc_to_ns(const struct ctx *c, int64_t t)
{
	double ns = (double)t * 1e6 / (double)c->tsc_khz;

	if (ns > 9e18)
		return INT64_MAX;
	if (ns < -9e18)
		return INT64_MIN;
	return (int64_t)ns;
}

static void summarize(struct ctx *c, uint32_t cfg, struct result *r)
{
	int64_t *s = mem_gpa(&c->vmm, VMM_SAMPLES_GPA + 8ull * c->mb->samples_max * cfg,
			     8ull * c->o.timers);
	uint64_t n;

	memcpy(&r->k, &c->mb->cfg[cfg], sizeof(r->k));
	for (size_t i = 0; i < NSTATS; i++)
		r->kvm[i] = c->after[cfg][i] == UINT64_MAX ?
				    UINT64_MAX :
				    c->after[cfg][i] - c->before[cfg][i];
	n = r->k.timers < c->o.timers ? r->k.timers : c->o.timers;
	r->lost = c->o.timers - n;
	if (!n)
		return;
	qsort(s, n, sizeof(*s), cmp_i64);
	r->p50_ns = (uint64_t)tsc_to_ns(c, s[n / 2]);
	r->p99_ns = (uint64_t)tsc_to_ns(c, s[n * 99 / 100 < n ? n * 99 / 100 : n - 1]);
	r->max_ns = (uint64_t)tsc_to_ns(c, s[n - 1]);
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
GETTER(g_wrmsr_tsc, r->k.tsc_wrmsr)
GETTER(g_wrmsr_eoi, r->k.eoi_wrmsr)
GETTER(g_hlt, r->k.hlt)
GETTER(g_traps, r->k.traps)
GETTER(g_exitops, guest_exit_ops(&r->k))
GETTER(g_pv, r->k.pv_arms)
GETTER(g_fb, r->k.fallbacks)
GETTER(g_pvf, r->k.pv_fired)
GETTER(g_polled, r->k.polled)
GETTER(g_p50, r->p50_ns / 1000)
GETTER(g_p99, r->p99_ns / 1000)

static double pct(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0.0;
}

static void print_table(struct ctx *c, struct result *r, int have[2])
{
	printf("exitless-vmm: 1 vCPU on CPU %d, %u timers per configuration, "
	       "deadlines %u-%u us, TSC %u kHz\n",
	       c->o.vcpu_cpu, c->o.timers, c->o.min_us, c->o.max_us,
	       c->tsc_khz);
	printf("  exitless: agent %s%s on CPU %d, inject %s, idlepoll %s "
	       "(H %" PRIu64 " us)\n",
	       c->o.adaptive ? "adaptive" : "dedicated",
	       c->agent_stats.sched_applied && c->o.fifo ? " SCHED_FIFO" : "",
	       c->agent_stats.cpu,
	       c->o.inject_msi ? "KVM_SIGNAL_MSI" : "irqfd",
	       idlepoll_policy_name(c->o.idle_policy),
	       c->o.halt_cost_ns / 1000);
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
	row("guest wrmsr TSC_DEADLINE", r, have, g_wrmsr_tsc);
	row("guest wrmsr EOI", r, have, g_wrmsr_eoi);
	row("guest hlt", r, have, g_hlt);
	row("guest ud2 traps", r, have, g_traps);
	row("guest exit-causing ops", r, have, g_exitops);
	row("pvtimer arms", r, have, g_pv);
	row("timers on LAPIC timer", r, have, g_fb);
	row("timers fired by the agent", r, have, g_pvf);
	row("waits ended in poll", r, have, g_polled);
	row("lateness p50 us", r, have, g_p50);
	row("lateness p99 us", r, have, g_p99);
	for (int i = 0; i < 2; i++) {
		if (!have[i])
			continue;
		printf("  %-9s fallback rate %.1f%%", cfg_names[i],
		       pct(r[i].k.fallbacks, r[i].k.timers));
		if (i == VMM_CFG_EXITLESS) {
			printf(" (");
			for (int j = 1; j < 7; j++)
				printf("%s%s %" PRIu64, j > 1 ? ", " : "",
				       reason_names[j], r[i].k.reasons[j]);
			printf("), handbacks %" PRIu64 ", spurious %" PRIu64,
			       r[i].k.handbacks, r[i].k.spurious);
		}
		printf(", lateness max %" PRIu64 " us\n", r[i].max_ns / 1000);
	}
	if (have[VMM_CFG_EXITLESS])
		printf("  agent: fires %" PRIu64 ", injections %" PRIu64
		       ", inject errors %" PRIu64 ", promises late %" PRIu64
		       "\n",
		       c->agent_stats.fires, c->agent_stats.injections,
		       c->agent_stats.inject_errors,
		       c->agent_stats.promises_late);
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
}

static void print_json(struct ctx *c, struct result *r, int have[2])
{
	int first = 1;

	printf("{\"timers\": %u, \"min_us\": %u, \"max_us\": %u, "
	       "\"tsc_khz\": %u, \"configs\": {",
	       c->o.timers, c->o.min_us, c->o.max_us, c->tsc_khz);
	for (int i = 0; i < 2; i++) {
		if (!have[i])
			continue;
		printf("%s\"%s\": {\"timers\": %" PRIu64 ", \"lost\": %" PRIu64,
		       first ? "" : ", ", cfg_names[i], r[i].k.timers,
		       r[i].lost);
		for (size_t j = 0; j < NSTATS; j++)
			if (r[i].kvm[j] != UINT64_MAX)
				printf(", \"kvm_%s\": %" PRIu64, stat_names[j],
				       r[i].kvm[j]);
		printf(", \"wrmsr_tsc_deadline\": %" PRIu64
		       ", \"wrmsr_eoi\": %" PRIu64 ", \"hlt\": %" PRIu64
		       ", \"traps\": %" PRIu64 ", \"pv_arms\": %" PRIu64
		       ", \"fallbacks\": %" PRIu64 ", \"polled\": %" PRIu64
		       ", \"handbacks\": %" PRIu64 ", \"spurious\": %" PRIu64
		       ", \"pv_fired\": %" PRIu64 ", \"lapic_fired\": %" PRIu64
		       ", \"early\": %" PRIu64
		       ", \"late_p50_ns\": %" PRIu64 ", \"late_p99_ns\": %" PRIu64
		       ", \"late_max_ns\": %" PRIu64,
		       r[i].k.tsc_wrmsr, r[i].k.eoi_wrmsr, r[i].k.hlt,
		       r[i].k.traps, r[i].k.pv_arms, r[i].k.fallbacks,
		       r[i].k.polled, r[i].k.handbacks, r[i].k.spurious,
		       r[i].k.pv_fired, r[i].k.lapic_fired, r[i].k.early,
		       r[i].p50_ns, r[i].p99_ns, r[i].max_ns);
		printf(", \"fallback_reasons\": {");
		for (int j = 1; j < 7; j++)
			printf("%s\"%s\": %" PRIu64, j > 1 ? ", " : "",
			       reason_names[j], r[i].k.reasons[j]);
		printf("}}");
		first = 0;
	}
	printf("}");
	if (have[VMM_CFG_EXITLESS])
		printf(", \"agent\": {\"fires\": %" PRIu64
		       ", \"injections\": %" PRIu64 ", \"inject_errors\": %" PRIu64
		       ", \"promises_late\": %" PRIu64 "}",
		       c->agent_stats.fires, c->agent_stats.injections,
		       c->agent_stats.inject_errors,
		       c->agent_stats.promises_late);
	printf("}\n");
}

int main(int argc, char **argv)
{
	static struct ctx c = { .efd = -1, .agent_stats = { .cpu = -1 } };
	struct sigaction sa = { .sa_handler = on_alarm };
	struct result r[VMM_CFG_COUNT];
	int have[VMM_CFG_COUNT], rc, bad = 0;

	parse(argc, argv, &c.o);
	place(&c.o);
	setup(&c);
	pin_self(c.o.vcpu_cpu);
	alarm_mask(SIG_BLOCK); /* agent_new() may start threads */
	setup_agent(&c);
	alarm_mask(SIG_UNBLOCK);

	sigaction(SIGALRM, &sa, NULL);
	watchdog_run = c.vcpu.run;
	alarm((unsigned int)c.o.timeout_s);
	rc = vcpu_run(&c.vcpu, on_io, &c);
	alarm(0);
	if (c.agent_running)
		agent_stop(c.agent);
	if (watchdog_fired) {
		fprintf(stderr, "exitless-vmm: watchdog: guest still running "
			"after %d s (a lost timer?)\n", c.o.timeout_s);
		return 1;
	}
	if (rc == -EPROTO && c.vcpu.last_exit)
		fprintf(stderr, "exitless-vmm: unexpected exit reason %u\n",
			c.vcpu.last_exit);
	if (rc)
		die("KVM_RUN", -rc);
	if (c.guest_status) {
		fprintf(stderr, "exitless-vmm: guest failed (status %u)\n",
			c.guest_status);
		return 1;
	}
	for (uint32_t i = 0; i < VMM_CFG_COUNT; i++) {
		have[i] = c.ran[i];
		memset(&r[i], 0, sizeof(r[i]));
		if (have[i])
			summarize(&c, i, &r[i]);
		else if (c.o.configs & (1u << i))
			bad = 1;
		bad |= have[i] && r[i].lost != 0;
	}
	if (c.o.json)
		print_json(&c, r, have);
	else
		print_table(&c, r, have);

	agent_destroy(c.agent);
	if (c.efd >= 0)
		close(c.efd);
	stats_close(&c.stats);
	vcpu_destroy(&c.vcpu);
	pvtimer_area_destroy(c.area);
	mem_destroy(&c.vmm);
	close(c.vmm.vm);
	close(c.vmm.kvm);
	return bad;
}
