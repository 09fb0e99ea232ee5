/* SPDX-License-Identifier: MIT */
/* exitless-vmm's own state, shared by the program's files (main.c and the
 * files named below): the options, the run's context, the result of one
 * configuration. Private to the program; the subsystems (vmm.h) know
 * nothing of it. cpu_set_t wants _GNU_SOURCE defined before any include. */
#ifndef EXITLESS_VMM_APP_H
#define EXITLESS_VMM_APP_H

#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include <exitless/agent.h>
#include <exitless/pvtimer.h>

#include "vmm.h"

/* The KVM statistics read around each phase (report.c names them; the
 * report's rows index result.kvm[] in this order). */
#define NSTATS 12
#define ST_HALT_EXITS 1
#define ST_HALT_SUCCESSFUL_POLL 5
#define ST_POLL_SUCCESS_NS 7
#define ST_POLL_FAIL_NS 8
extern const char *const stat_names[];

#define WORKLOAD_TIMER 0
#define WORKLOAD_PINGPONG 1

/* Host halt polling (KVM_CAP_HALT_POLL, per VM) for a phase. */
#define HP_DEFAULT 0 /* leave the VM as KVM made it (module halt_poll_ns) */
#define HP_OFF 1     /* 0: never poll */
#define HP_KVM 2     /* KVM's default 200 us ceiling, its grow/shrink rule */
#define HP_SMART 3   /* the ceiling chosen from the halt histograms */
#define HP_MODES_MAX 3
#define HP_KVM_DEFAULT_NS 200000u

#define HP_HIST_N 32 /* KVM's HALT_POLL_HIST_COUNT */

struct hp_mode {
	int kind;
	uint32_t period_ms; /* HP_SMART: how often it decides */
};

struct opts {
	uint32_t timers, min_us, max_us, configs, idle_policy;
	uint64_t halt_cost_ns, poll_slack_ns, seed, margin_ns;
	uint32_t backstop_us; /* guest liveness backstop B; 0: off */
	/* KVM PV EOI: offered to the guest (CPUID) and used in exitless;
	 * pv_eoi_plain: in plain too (what a Linux guest on KVM does) */
	int pv_eoi, pv_eoi_plain;
	int deadline_poll; /* guest polls to a deadline closer than H */
	uint64_t spin_sync_ns; /* the agent's spinning promise; 0: libagent's */
	int json, inject_msi, adaptive, fifo, timeout_s, vcpu_cpu, agent_cpu;
	int vcpus;
	uint32_t test_fault; /* --test-fault-vcpu N: 1 + N, else 0 */
	uint32_t test_device_delay_ms; /* --test-device-start-ms */
	int cpus[VMM_VCPUS_MAX]; /* host CPU of each vCPU thread, -1: any */
	const char *guest;
	int workload;
	/* pingpong */
	uint32_t services_us[VMM_PP_SVC_MAX], nservices;
	uint32_t rounds, warmup, pp_configs;
	/* halt polling: one repetition of the workload per mode */
	struct hp_mode hp[HP_MODES_MAX];
	int nhp;
	uint64_t host_halt_cost_ns; /* H of the smart host rule */
	const char *plot;           /* SVG path, or NULL */
	const char *metrics;        /* Prometheus text path, or NULL */
};

struct ctx;
struct hpctl;
struct device;

/* What a vCPU thread hands to vcpu_run()'s port callback. */
struct vcpu_ctx {
	struct ctx *c;
	int idx;
	int rc; /* vcpu_run()'s result */
	pthread_t thread;
};

/* One pingpong phase as the host saw it. */
struct pp_phase {
	uint64_t before[VMM_VCPUS_MAX][NSTATS], after[VMM_VCPUS_MAX][NSTATS];
	int ran;
	char error[160]; /* the host refused the configuration */
	uint64_t hp_changes, hp_last_ns; /* smart host rule */
	/* KVM's halt histograms (success, fail, wait), when readable */
	uint64_t hist_before[3][HP_HIST_N], hist_after[3][HP_HIST_N];
	int have_hist;
};

struct ctx {
	struct opts o;
	struct vmm vmm;
	struct vcpu vcpu[VMM_VCPUS_MAX];
	struct stats stats[VMM_VCPUS_MAX];
	struct vcpu_ctx vc[VMM_VCPUS_MAX];
	struct pvtimer_area *area;
	struct pvagent *agent;
	struct vmm_mailbox *mb;
	uint32_t tsc_khz, host_khz;
	int64_t tsc_offset[VMM_VCPUS_MAX]; /* KVM_VCPU_TSC_OFFSET */
	int kvm_pv_eoi; /* KVM_GET_SUPPORTED_CPUID offers KVM_FEATURE_PV_EOI */
	int efd[VMM_VCPUS_MAX];
	int dev_efd;
	/* KVM_CAP_X86_DISABLE_EXITS(HLT): 1 set at VM creation, 0 not
	 * asked for, -errno refused there */
	int no_hlt_exit;
	/* lock: the vCPU threads' port writes (console, phases) */
	pthread_mutex_t lock;
	int agent_running;
	/* timer workload, per halt-poll repetition and configuration */
	int begun[HP_MODES_MAX][VMM_CFG_COUNT], ended[HP_MODES_MAX][VMM_CFG_COUNT];
	uint64_t before[VMM_VCPUS_MAX][HP_MODES_MAX][VMM_CFG_COUNT][NSTATS];
	uint64_t after[VMM_VCPUS_MAX][HP_MODES_MAX][VMM_CFG_COUNT][NSTATS];
	int ran[HP_MODES_MAX][VMM_CFG_COUNT];
	uint64_t hp_changes[HP_MODES_MAX][VMM_CFG_COUNT];
	/* MSR_KVM_PV_EOI_EN of each vCPU at each phase's END marker (the
	 * guest turns it off after it), UINT64_MAX if unreadable */
	uint64_t pv_eoi_msr[VMM_VCPUS_MAX][HP_MODES_MAX][VMM_CFG_COUNT];
	struct pvagent_stats pvagent_stats; /* cumulative, at the last stop */
	struct pvagent_stats agent_rep[HP_MODES_MAX]; /* at each repetition's stop */
	/* pingpong workload */
	struct pp_phase pp[VMM_PP_SVC_MAX][VMM_PP_CFGS];
	struct device *dev;
	uint64_t dev_completions, dev_inject_errors; /* at its stop */
	struct hpctl *hpctl; /* running smart host rule, or NULL */
	char line[256];
	size_t line_len;
	uint32_t guest_status[VMM_VCPUS_MAX];
	int done[VMM_VCPUS_MAX];
	int faulted[VMM_VCPUS_MAX]; /* the guest reported an exception */
};

struct result {
	struct vmm_counters k;
	uint64_t kvm[NSTATS];
	uint64_t p50_ns, p99_ns, max_ns;
	uint64_t lost;
	int64_t *sorted_ns; /* lateness samples, ascending (for the plot) */
	uint64_t n;
};

/* One pingpong configuration at one service time. */
struct pp_result {
	int ran, skipped;
	const char *error; /* the host refused it: no figures */
	uint64_t rounds, p50_ns, p99_ns, max_ns, run_ns;
	double guest_poll_cpu, host_poll_cpu;     /* CPUs over the run */
	double guest_poll_cpu_raw; /* stalls included (report_pp.c) */
	uint64_t stalled;          /* round trips left out of guest_poll_cpu */
	double guest_poll_ns_per_rtt, host_poll_ns_per_rtt; /* guest: median */
	double guest_poll_ns_mean;
	double halt_exits_per_rtt, successful_poll_per_rtt, polled_share;
	uint64_t hp_changes, hp_last_ns;
	int64_t *sorted_ns; /* round trips, ascending (for the plot) */
};

/* The CPUs the process may use, for an unpinned agent thread. */
extern cpu_set_t allowed_set;

/* main.c */
void die(const char *what, int err);

/* cli.c */
void parse(int argc, char **argv, struct opts *o);
void place(struct opts *o);
const char *hp_name(const struct hp_mode *m, char *buf, size_t len);

/* setup.c: KVM, the VM, its vCPUs, the pvtimer area, the mailbox */
void setup(struct ctx *c);
void teardown(struct ctx *c);

/* agentctl.c: the timer agent */
void setup_agent(struct ctx *c);
int agent_phase_begin(struct ctx *c);
int agent_phase_end(struct ctx *c, int rep);

/* phases.c: the timer workload's phase markers */
int timer_phase(struct ctx *c, int idx, uint32_t v);

/* pingpong.c: the pingpong workload's phase markers */
extern const char *const pp_names[VMM_PP_CFGS];
void setup_pingpong(struct ctx *c);
void teardown_pingpong(struct ctx *c);
int pingpong_phase(struct ctx *c, int idx, uint32_t v);

/* hpoll.c: host halt polling, KVM's rule or the smart one */
int hp_setup(struct ctx *c); /* before the vCPUs run */
int hp_set(struct ctx *c, uint64_t ns);
int hp_begin(struct ctx *c, const struct hp_mode *m);
uint64_t hp_end(struct ctx *c); /* returns the smart rule's changes */
uint64_t hp_window(const struct ctx *c); /* smart's last ceiling */
/* vCPU 0's halt histograms: success, fail, wait; -ENOENT without them */
int hp_read_hists(struct ctx *c, uint64_t out[3][HP_HIST_N]);
void hp_destroy(struct ctx *c);

/* ports.c */
int on_io(void *opaque, uint16_t port, uint32_t value);

/* stop.c */
void stop_register_run(int idx, struct kvm_run *run);
void stop_register_threads(const pthread_t *threads, int n);
void stop_all(void);
int stopped(void);
int watchdog_expired(void);
void stop_install_handlers(void);
void alarm_mask(int how);

/* threads.c */
void pin_self(int cpu);
void start_vcpu_threads(struct ctx *c);
void run_vcpus(struct ctx *c);

/* report.c */
void summarize(struct ctx *c, int rep, uint32_t cfg, struct result *r);
void print_table(struct ctx *c, struct result *r, int have[2], int rep);
void print_json_configs(struct ctx *c, struct result r[][VMM_CFG_COUNT],
			int have[][VMM_CFG_COUNT]);

/* report.c */
int64_t tsc_to_ns(const struct ctx *c, int64_t t);

/* report_ops.c: exit-causing guest operations per timer, by cause */
void print_exit_ops(const struct ctx *c, const struct result *r,
		    const int have[2], int rep);
void json_exit_ops(const struct ctx *c, const struct result *r, int rep,
		   int cfg);
void json_exit_ops_run(const struct ctx *c);

/* report_pp.c */
void pp_summarize(struct ctx *c, uint32_t svc, uint32_t cfg,
		  struct pp_result *r);
void print_pingpong(struct ctx *c, struct pp_result r[][VMM_PP_CFGS]);

/* plot.c: cumulative distributions as SVG, one panel per group */
int write_metrics(struct ctx *c, const char *path);
int plot_timers(struct ctx *c, struct result r[][VMM_CFG_COUNT],
		int have[][VMM_CFG_COUNT], const char *path);
int plot_pingpong(struct ctx *c, struct pp_result r[][VMM_PP_CFGS],
		  const char *path);

#endif /* EXITLESS_VMM_APP_H */
