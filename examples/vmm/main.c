/* SPDX-License-Identifier: MIT */
/* exitless-vmm: a sample VMM on /dev/kvm that runs the same guest timer
 * workload twice, on the plain LAPIC TSC-deadline timer and on the exitless
 * path (pvtimer area + libagent + libidlepoll in the guest), and prints the
 * two side by side. Policy lives here: the watchdog, when the agent runs,
 * what is fatal (everything: this is an example, it exits with a message).
 * The command line and CPU placement are in cli.c, the report in report.c.
 *
 * Exit status: 0 success, 1 error, 77 when /dev/kvm is absent or unusable
 * (so a test can skip). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <exitless/pvtimer.h>

#include "app.h"

_Static_assert(VMM_MAILBOX_GPA + sizeof(struct vmm_mailbox) <= VMM_KSTACK_BASE,
	       "the mailbox runs into the kernel stacks");
_Static_assert(sizeof(struct vmm_percpu) <= 256,
	       "the per-vCPU block eats the kernel stack");

#define EXIT_SKIP 77
#define PV_GSI 1

void die(const char *what, int err)
{
	fprintf(stderr, "exitless-vmm: %s: %s\n", what, strerror(err));
	exit(1);
}

/* ---- stopping the vCPUs: the watchdog (a lost timer leaves the guest
 * halted for ever) and errors (the other vCPU may wait at a rendezvous) -- */

/* stop_runs[] is filled before any vCPU runs; stop_threads[i] is
 * published by the release store of stop_nthreads. Several threads (a
 * failing vCPU, the one it stopped, the watchdog's handler) may call
 * stop_all() at once, so every shared access here is atomic. */
static struct kvm_run *stop_runs[VMM_VCPUS_MAX];
static pthread_t stop_threads[VMM_VCPUS_MAX];
static int stop_nthreads;
static volatile sig_atomic_t watchdog_fired;
static int stopping;

/* Async-signal-safe: KVM_RUN returns -EINTR at once when entered after
 * immediate_exit is set; SIGUSR1 interrupts one already running. A vCPU
 * thread not yet published in stop_threads[] has immediate_exit set
 * before it can enter KVM_RUN. */
static void stop_all(void)
{
	pthread_t self = pthread_self();
	int n;

	for (int i = 0; i < VMM_VCPUS_MAX; i++) {
		struct kvm_run *run = __atomic_load_n(&stop_runs[i],
						      __ATOMIC_ACQUIRE);

		if (run)
			__atomic_store_n(&run->immediate_exit, 1,
					 __ATOMIC_RELEASE);
	}
	if (__atomic_exchange_n(&stopping, 1, __ATOMIC_ACQ_REL))
		return;
	n = __atomic_load_n(&stop_nthreads, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++)
		if (!pthread_equal(stop_threads[i], self))
			pthread_kill(stop_threads[i], SIGUSR1);
}

static int stopped(void)
{
	return __atomic_load_n(&stopping, __ATOMIC_ACQUIRE);
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

static const char *const exc_names[22] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "",
	"#TS", "#NP", "#SS", "#GP", "#PF", "", "#MF", "#AC", "#MC", "#XM",
	"#VE", "#CP",
};

/* The vCPU's own record (the guest wrote it before the port write that
 * brought us here, and that vCPU is stopped in KVM_RUN's exit now). */
static void report_fatal(struct ctx *c, int idx)
{
	const struct vmm_fatal *f = &c->mb->fatal[idx];
	uint64_t v = f->vector;

	c->faulted[idx] = 1;
	if (!f->valid) {
		fprintf(stderr, "exitless-vmm: vCPU %d: guest exception, "
			"no record\n", idx);
		return;
	}
	fprintf(stderr,
		"exitless-vmm: vCPU %d: guest exception %" PRIu64 " (%s) in "
		"ring %" PRIu64 ": error code %#" PRIx64 ", rip %#" PRIx64
		", cs %#" PRIx64 ", rflags %#" PRIx64 ", rsp %#" PRIx64
		", ss %#" PRIx64 ", cr2 %#" PRIx64 "\n",
		idx, v, v < 22 ? exc_names[v] : "?", f->cs & 3, f->error,
		f->rip, f->cs, f->rflags, f->rsp, f->ss, f->cr2);
}

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
		/* stop here; vcpu_thread()/main() stop the other vCPUs */
		report_fatal(c, idx);
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
	c->mb->test_fault = c->o.test_fault;
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
		__atomic_store_n(&stop_runs[i], c->vcpu[i].run,
				 __ATOMIC_RELEASE);
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
		if (rc == -EINTR && stopped())
			continue; /* stopped because another vCPU failed */
		if (rc == -EFAULT && c.faulted[i]) {
			fprintf(stderr, "exitless-vmm: guest vCPU %d stopped "
				"by an exception (above); the others were "
				"stopped\n", i);
			return 1;
		}
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
	if (stopped())
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
