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

_Static_assert(VMM_MAILBOX_GPA + sizeof(struct vmm_mailbox) <= VMM_KSTACK_BASE,
	       "the mailbox runs into the kernel stacks");
_Static_assert(sizeof(struct vmm_percpu) <= 256,
	       "the per-vCPU block eats the kernel stack");

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
	int vcpus;
	int cpus[VMM_VCPUS_MAX]; /* host CPU of each vCPU thread, -1: any */
	const char *guest;
};

struct ctx;

/* The CPUs the process may use, for an unpinned agent thread. */
static cpu_set_t allowed_set;

/* What a vCPU thread hands to vcpu_run()'s port callback. */
struct vcpu_ctx {
	struct ctx *c;
	int idx;
	int rc; /* vcpu_run()'s result */
	pthread_t thread;
};

struct ctx {
	struct opts o;
	struct vmm vmm;
	struct vcpu vcpu[VMM_VCPUS_MAX];
	struct stats stats[VMM_VCPUS_MAX];
	struct vcpu_ctx vc[VMM_VCPUS_MAX];
	struct pvtimer_area *area;
	struct agent *agent;
	struct vmm_mailbox *mb;
	uint32_t tsc_khz;
	int efd[VMM_VCPUS_MAX];
	/* lock: the vCPU threads' port writes (console, phases) */
	pthread_mutex_t lock;
	int agent_running;
	int begun[VMM_CFG_COUNT], ended[VMM_CFG_COUNT];
	uint64_t before[VMM_VCPUS_MAX][VMM_CFG_COUNT][NSTATS];
	uint64_t after[VMM_VCPUS_MAX][VMM_CFG_COUNT][NSTATS];
	int ran[VMM_CFG_COUNT];
	struct agent_stats agent_stats;
	char line[256];
	size_t line_len;
	uint32_t guest_status[VMM_VCPUS_MAX];
	int done[VMM_VCPUS_MAX];
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
		"  --timers N          timers per configuration per vCPU (1000)\n"
		"  --vcpus N           1 or 2 vCPUs running the workload together (1)\n"
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
		"  --vcpu-cpu N        host CPU of vCPU 0 (first allowed; others follow)\n"
		"  --agent-cpu N       host CPU of the agent (next allowed CPU no vCPU\n"
		"                      uses; -1 or none left: any, adaptive mode)\n"
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
		{ "fifo", 0, 0, 'F' },       { "vcpus", 1, 0, 'n' },
		{ "help", 0, 0, '?' },       { 0, 0, 0, 0 },
	};
	int c, p;

	*o = (struct opts){ .timers = 1000, .min_us = 50, .max_us = 2000,
			    .configs = 3, .idle_policy = IDLEPOLL_POLICY_SMART,
			    .halt_cost_ns = 100000, .poll_slack_ns = 100000,
			    .seed = 1, .margin_ns = 5000, .timeout_s = 120,
			    .vcpu_cpu = CPU_AUTO, .agent_cpu = CPU_AUTO,
			    .adaptive = -1, .vcpus = 1,
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
		case 'n': o->vcpus = (int)num(optarg, "--vcpus"); break;
		default: usage(); exit(c == '?' ? 1 : 0);
		}
	}
	if (optind != argc || !o->timers || !o->configs || o->vcpus < 1 ||
	    o->vcpus > VMM_VCPUS_MAX ||
	    o->max_us < o->min_us || !o->min_us || o->max_us > 10000000) {
		usage();
		exit(1);
	}
}

/* ---- stopping the vCPUs: the watchdog (a lost timer leaves the guest
 * halted for ever) and errors (the other vCPU may wait at a rendezvous) -- */

static struct kvm_run *volatile stop_runs[VMM_VCPUS_MAX];
static pthread_t stop_threads[VMM_VCPUS_MAX];
static volatile int stop_nthreads;
static volatile sig_atomic_t watchdog_fired, stopping;

/* Async-signal-safe: KVM_RUN returns -EINTR at once when entered after
 * immediate_exit is set; SIGUSR1 interrupts one already running. */
static void stop_all(void)
{
	pthread_t self = pthread_self();

	for (int i = 0; i < VMM_VCPUS_MAX; i++)
		if (stop_runs[i])
			stop_runs[i]->immediate_exit = 1;
	if (__atomic_exchange_n(&stopping, 1, __ATOMIC_ACQ_REL))
		return;
	for (int i = 0; i < stop_nthreads; i++)
		if (!pthread_equal(stop_threads[i], self))
			pthread_kill(stop_threads[i], SIGUSR1);
}

static void on_alarm(int sig)
{
	(void)sig;
	watchdog_fired = 1;
	stop_all();
}

static void on_usr1(int sig)
{
	(void)sig; /* its only job is to interrupt KVM_RUN */
}

/* Helper threads (the agent's) must not take these signals: only a vCPU
 * thread can turn them into an exit from KVM_RUN. */
static void alarm_mask(int how)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGALRM);
	sigaddset(&s, SIGUSR1);
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

/* A vCPU's phase marker, under c->lock. The agent starts with the first
 * vCPU entering the exitless phase and stops after the last one left it
 * (the guest meets at a rendezvous around each phase). Each vCPU's KVM
 * counters are read by its own thread at its own markers. */
static int phase(struct ctx *c, int idx, uint32_t v)
{
	uint32_t cfg = v & ~VMM_PHASE_END;
	int rc;

	if (cfg >= VMM_CFG_COUNT)
		return -EPROTO;
	if (!(v & VMM_PHASE_END)) {
		if (cfg == VMM_CFG_EXITLESS && !c->agent_running &&
		    c->begun[cfg] == 0) {
			cpu_set_t mine;
			int widen = c->o.agent_cpu < 0 &&
				    CPU_COUNT(&allowed_set) > 0 &&
				    sched_getaffinity(0, sizeof(mine), &mine) == 0;

			/* an unpinned agent thread inherits this pinned
			 * vCPU thread's CPU: let it have them all */
			if (widen)
				sched_setaffinity(0, sizeof(allowed_set),
						  &allowed_set);
			alarm_mask(SIG_BLOCK);
			rc = agent_start(c->agent);
			alarm_mask(SIG_UNBLOCK);
			if (widen)
				sched_setaffinity(0, sizeof(mine), &mine);
			if (rc)
				return rc;
			c->agent_running = 1;
		}
		c->begun[cfg]++;
		/* after the agent started: its start-up is not the guest's */
		return stats_read(&c->stats[idx], c->before[idx][cfg]);
	}
	rc = stats_read(&c->stats[idx], c->after[idx][cfg]);
	if (rc)
		return rc;
	if (++c->ended[cfg] < c->o.vcpus)
		return 0;
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

static int on_io_locked(struct ctx *c, int idx, uint16_t port,
			uint32_t value)
{
	struct vmm_mailbox *mb = c->mb;

	switch (port) {
	case VMM_PORT_CONSOLE:
		console_byte(c, (char)value);
		return 0;
	case VMM_PORT_PHASE:
		return phase(c, idx, value);
	case VMM_PORT_DONE:
		c->guest_status[idx] = value;
		c->done[idx] = 1;
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

static int on_io(void *opaque, uint16_t port, uint32_t value)
{
	struct vcpu_ctx *vc = opaque;
	int rc;

	pthread_mutex_lock(&vc->c->lock);
	rc = on_io_locked(vc->c, vc->idx, port, value);
	pthread_mutex_unlock(&vc->c->lock);
	return rc;
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
 * vCPUs on the first ones, the agent on the next. With no CPU left for it
 * a spinning agent would take a vCPU's CPU away, so it sleeps (adaptive)
 * and is not pinned. */
static int cpu_taken(const struct opts *o, int n, int cpu)
{
	for (int i = 0; i < n; i++)
		if (o->cpus[i] == cpu)
			return 1;
	return 0;
}

static void place(struct opts *o)
{
	cpu_set_t set;
	int allowed[CPU_SETSIZE], n = 0;

	CPU_ZERO(&allowed_set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		allowed_set = set;
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				allowed[n++] = i;
	}
	for (int v = 0; v < o->vcpus; v++) {
		o->cpus[v] = n ? allowed[v % n] : -1;
		if (v == 0 && o->vcpu_cpu != CPU_AUTO)
			o->cpus[v] = o->vcpu_cpu;
		for (int j = 0; v > 0 && j < n; j++) {
			if (!cpu_taken(o, v, allowed[j])) {
				o->cpus[v] = allowed[j];
				break;
			}
		}
	}
	o->vcpu_cpu = o->cpus[0];
	if (o->agent_cpu == CPU_AUTO) {
		o->agent_cpu = -1;
		for (int j = 0; j < n; j++) {
			if (!cpu_taken(o, o->vcpus, allowed[j])) {
				o->agent_cpu = allowed[j];
				break;
			}
		}
	}
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
	for (int i = 0; i < c->o.vcpus; i++) {
		rc = vcpu_create(&c->vmm, i, &c->vcpu[i]);
		if (rc)
			die("KVM_CREATE_VCPU", -rc);
	}
	c->tsc_khz = vcpu_tsc_khz(&c->vcpu[0]);
	if (!c->tsc_khz)
		die("KVM_GET_TSC_KHZ", EINVAL);

	/* The pvtimer area: a sealed memfd the library makes, one slot per
	 * vCPU, mapped as a second memory slot right after RAM. */
	{
		PVTIMER_AREA_OPTS(ao, .slot_count = (uint32_t)c->o.vcpus,
				  .tsc_khz = c->tsc_khz,
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
	for (int i = 0; i < c->o.vcpus; i++) {
		pv.slot = (uint32_t)i; /* each vCPU learns its own slot */
		rc = vcpu_setup(&c->vmm, &c->vcpu[i], entry, &pv);
		if (rc == -ENOTSUP) {
			fprintf(stderr, "exitless-vmm: no x2APIC or "
					"TSC-deadline timer\n");
			exit(EXIT_SKIP);
		}
		if (rc)
			die("vCPU set-up", -rc);
		rc = stats_open(&c->stats[i], c->vcpu[i].fd, stat_names,
				NSTATS);
		if (rc)
			die("KVM_GET_STATS_FD", -rc);
	}

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
	c->mb->vcpus = (uint32_t)c->o.vcpus;
	c->mb->samples_max = (VMM_RAM_SIZE - VMM_SAMPLES_GPA) / 8 /
			     VMM_CFG_COUNT / (uint32_t)c->o.vcpus;
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
	if (!c->o.inject_msi) {
		rc = irq_msi_irqfds(&c->vmm, PV_GSI, (uint32_t)c->o.vcpus,
				    VMM_VEC_PVTIMER, c->efd);
		if (rc)
			die("irqfd", -rc);
	}
	/* guest and host TSC agree here (offset 0, KVM-HERE.md) */
	rc = pvtimer_tsc_map_init(&map, c->tsc_khz, c->tsc_khz, 0);
	if (!rc)
		rc = agent_new(&ao, &c->agent);
	if (rc)
		die("agent_new", -rc);
	rc = agent_attach_area(c->agent, c->area, &map, NULL);
	/* slot i belongs to vCPU i, whose APIC ID is i */
	for (int i = 0; !rc && i < c->o.vcpus; i++) {
		if (c->o.inject_msi) {
			inj.kind = AGENT_INJ_MSI;
			inj.fd = c->vmm.vm;
			inj.msi_address = 0xfee00000u | ((uint32_t)i << 12);
		} else {
			inj.fd = c->efd[i];
		}
		rc = agent_bind_slot(c->agent, 0, (uint32_t)i, &inj);
	}
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

/* One configuration over all vCPUs: counters summed, samples pooled. */
static void summarize(struct ctx *c, uint32_t cfg, struct result *r)
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
						     ((uint64_t)v * VMM_CFG_COUNT + cfg),
				     8ull * c->o.timers);
		uint64_t n;

		/* guest-written: copy once, then trust only the copy */
		memcpy(&k, &c->mb->cfg[v][cfg], sizeof(k));
		for (size_t i = 0; i < sizeof(k) / sizeof(uint64_t); i++)
			sum[i] += add[i];
		for (size_t i = 0; i < NSTATS; i++) {
			if (c->after[v][cfg][i] == UINT64_MAX ||
			    r->kvm[i] == UINT64_MAX)
				r->kvm[i] = UINT64_MAX;
			else
				r->kvm[i] += c->after[v][cfg][i] -
					     c->before[v][cfg][i];
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
	}
	free(all);
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
	char cpus[32];

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
	       c->agent_stats.sched_applied && c->o.fifo ? " SCHED_FIFO" : "",
	       cpus,
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

	printf("{\"vcpus\": %d, \"timers\": %u, \"min_us\": %u, "
	       "\"max_us\": %u, \"tsc_khz\": %u, \"configs\": {",
	       c->o.vcpus, c->o.timers, c->o.min_us, c->o.max_us,
	       c->tsc_khz);
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

static void *vcpu_thread(void *arg)
{
	struct vcpu_ctx *vc = arg;
	struct ctx *c = vc->c;

	/* created while the signals were blocked for the agent's sake */
	alarm_mask(SIG_UNBLOCK);
	vc->rc = vcpu_run(&c->vcpu[vc->idx], on_io, vc);
	if (vc->rc)
		stop_all(); /* the others may wait for us at a rendezvous */
	return NULL;
}

/* vCPU 0 runs on the main thread, the others on threads pinned through
 * their attributes (a thread inherits its creator's pinning). */
static void start_vcpu_threads(struct ctx *c)
{
	for (int i = 0; i < c->o.vcpus; i++) {
		c->vc[i] = (struct vcpu_ctx){ .c = c, .idx = i };
		stop_runs[i] = c->vcpu[i].run;
	}
	stop_threads[0] = pthread_self();
	for (int i = 1; i < c->o.vcpus; i++) {
		pthread_attr_t attr;
		int rc = pthread_attr_init(&attr);

		if (!rc && c->o.cpus[i] >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(c->o.cpus[i], &set);
			rc = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		}
		if (!rc)
			rc = pthread_create(&c->vc[i].thread, &attr, vcpu_thread,
					    &c->vc[i]);
		pthread_attr_destroy(&attr);
		if (rc)
			die("vCPU thread", rc);
		stop_threads[i] = c->vc[i].thread;
	}
	__atomic_store_n(&stop_nthreads, c->o.vcpus, __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
	static struct ctx c = { .efd = { -1, -1 },
				.agent_stats = { .cpu = -1 },
				.lock = PTHREAD_MUTEX_INITIALIZER };
	struct sigaction sa = { .sa_handler = on_alarm };
	struct sigaction su = { .sa_handler = on_usr1 };
	struct result r[VMM_CFG_COUNT];
	int have[VMM_CFG_COUNT], rc, bad = 0;

	parse(argc, argv, &c.o);
	place(&c.o);
	setup(&c);
	alarm_mask(SIG_BLOCK); /* agent_new() may start threads */
	setup_agent(&c);
	/* no SA_RESTART: the point is to interrupt KVM_RUN */
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGUSR1, &su, NULL);
	pin_self(c.o.cpus[0]);
	start_vcpu_threads(&c);
	alarm_mask(SIG_UNBLOCK);

	alarm((unsigned int)c.o.timeout_s);
	c.vc[0].rc = vcpu_run(&c.vcpu[0], on_io, &c.vc[0]);
	if (c.vc[0].rc)
		stop_all();
	for (int i = 1; i < c.o.vcpus; i++)
		pthread_join(c.vc[i].thread, NULL);
	alarm(0);
	if (c.agent_running)
		agent_stop(c.agent);
	if (watchdog_fired) {
		fprintf(stderr, "exitless-vmm: watchdog: guest still running "
			"after %d s (a lost timer?)\n", c.o.timeout_s);
		return 1;
	}
	for (int i = 0; i < c.o.vcpus; i++) {
		rc = c.vc[i].rc;
		if (rc == -EINTR && stopping)
			continue; /* stopped because another vCPU failed */
		if (rc == -EPROTO && c.vcpu[i].last_exit)
			fprintf(stderr, "exitless-vmm: vCPU %d: unexpected exit "
				"reason %u\n", i, c.vcpu[i].last_exit);
		if (rc) {
			fprintf(stderr, "exitless-vmm: vCPU %d: KVM_RUN: %s\n",
				i, strerror(-rc));
			return 1;
		}
		if (c.guest_status[i] || !c.done[i]) {
			fprintf(stderr, "exitless-vmm: guest vCPU %d failed "
				"(status %u)\n", i, c.guest_status[i]);
			return 1;
		}
	}
	if (stopping)
		return 1;
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
	for (int i = 0; i < c.o.vcpus; i++) {
		if (c.efd[i] >= 0)
			close(c.efd[i]);
		stats_close(&c.stats[i]);
		vcpu_destroy(&c.vcpu[i]);
	}
	pvtimer_area_destroy(c.area);
	mem_destroy(&c.vmm);
	close(c.vmm.vm);
	close(c.vmm.kvm);
	return bad;
}
