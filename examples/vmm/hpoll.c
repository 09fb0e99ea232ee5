/* SPDX-License-Identifier: MIT */
/* Host halt polling. KVM polls a halting vCPU before it sleeps, with a
 * grow/shrink rule under a VM-wide ceiling, KVM_CAP_HALT_POLL (KVM offers
 * no per-vCPU knob). Modes: leave it, off (0), KVM's default ceiling
 * (200 us), or smart: a thread that, every period, turns the vCPUs' halt
 * histograms into a histogram of idle durations, asks libidlepoll for
 * the cost-minimising window (idlepoll_hist_window, the simulator's cost
 * model with the host's halt cost H) and sets the ceiling to the largest
 * vCPU's window, logging each change.
 *
 * What KVM records per halt (virt/kvm/kvm_main.c, kvm_vcpu_halt): a poll
 * that saw the wake-up goes to halt_poll_success_hist with its length,
 * which is the whole idle period; a failed poll to halt_poll_fail_hist
 * (its length is the window, which says only "longer"), and the sleep
 * after it to halt_wait_hist. So an idle period is a success, or the
 * failed poll plus the wait: we add the mean failed poll (from
 * halt_poll_fail_ns) to each wait bucket's midpoint. A halt that finds
 * its wake-up already pending and never sleeps is recorded nowhere; it
 * costs nothing either way. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include <exitless/idlepoll.h>

#include "app.h"

#define HIST_N HP_HIST_N
#define HP_MAX_WINDOW_NS 1000000 /* never poll a host CPU away for more */
/* Decide only on this many (decayed) halts: a handful of periods makes a
 * histogram of noise, and the ceiling would flap with it. */
#define HP_MIN_EVENTS 32

enum { H_SUCCESS, H_FAIL, H_WAIT, H_FAIL_NS, H_COUNT };
static const char *const hist_names[H_COUNT] = {
	"halt_poll_success_hist", "halt_poll_fail_hist", "halt_wait_hist",
	"halt_poll_fail_ns",
};

struct hpctl {
	struct ctx *c;
	struct stats st[VMM_VCPUS_MAX];
	uint64_t prev[VMM_VCPUS_MAX][3][HIST_N], prev_fail_ns[VMM_VCPUS_MAX];
	uint64_t idle[VMM_VCPUS_MAX][HIST_N]; /* decayed idle histogram */
	pthread_t thread;
	pthread_mutex_t lock; /* stop, cond */
	pthread_cond_t cond;
	int stop, running;
	uint32_t period_ms;
	uint64_t window, changes; /* the thread's; read after the join */
};

int hp_set(struct ctx *c, uint64_t ns)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_HALT_POLL,
				      .args = { ns } };

	return ioctl(c->vmm.vm, KVM_ENABLE_CAP, &cap) < 0 ? -errno : 0;
}

/* vCPU stats fds take the vCPU's mutex to open, so before the vCPUs run. */
int hp_setup(struct ctx *c)
{
	struct hpctl *h;
	int rc = 0;

	if (ioctl(c->vmm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_HALT_POLL) <= 0)
		return -EOPNOTSUPP;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->c = c;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	for (int i = 0; i < c->o.vcpus && !rc; i++) {
		rc = stats_open(&h->st[i], c->vcpu[i].fd, hist_names, H_COUNT);
		for (int j = 0; !rc && j < H_COUNT; j++)
			if (h->st[i].offsets[j] == UINT64_MAX ||
			    (j < 3 && h->st[i].sizes[j] > HIST_N))
				rc = -ENOENT; /* this kernel lacks it */
	}
	if (rc) {
		for (int i = 0; i < c->o.vcpus; i++)
			if (h->st[i].fd > 0)
				stats_close(&h->st[i]);
		free(h);
		return rc;
	}
	c->hpctl = h;
	return 0;
}

static uint32_t bucket_of(uint64_t ns)
{
	uint32_t b = ns ? 64 - (uint32_t)__builtin_clzll(ns) : 0;

	return b < HIST_N ? b : HIST_N - 1;
}

/* One vCPU's halts since the last look, folded into its idle histogram
 * (halved first: the last few periods matter, older ones fade). */
static int sample(struct hpctl *h, int v, uint64_t *halts)
{
	uint64_t cur[3][HIST_N] = { { 0 } }, fail_ns, fails = 0, mean_fail;
	int rc;

	for (int j = 0; j < 3; j++) {
		rc = stats_read_array(&h->st[v], (uint32_t)j, cur[j], HIST_N);
		if (rc < 0)
			return rc;
	}
	rc = stats_read_array(&h->st[v], H_FAIL_NS, &fail_ns, 1);
	if (rc < 0)
		return rc;
	for (int b = 0; b < HIST_N; b++) {
		h->idle[v][b] /= 2;
		fails += cur[H_FAIL][b] - h->prev[v][H_FAIL][b];
	}
	mean_fail = fails ? (fail_ns - h->prev_fail_ns[v]) / fails : 0;
	for (int b = 0; b < HIST_N; b++) {
		uint64_t ok = cur[H_SUCCESS][b] - h->prev[v][H_SUCCESS][b];
		uint64_t slept = cur[H_WAIT][b] - h->prev[v][H_WAIT][b];
		uint64_t mid = b ? (3ull << b) / 4 : 0;

		h->idle[v][b] += ok;
		h->idle[v][bucket_of(mean_fail + mid)] += slept;
		*halts += ok + slept;
	}
	memcpy(h->prev[v], cur, sizeof(cur));
	h->prev_fail_ns[v] = fail_ns;
	return 0;
}

static int decide(struct hpctl *h)
{
	uint64_t window = 0, halts = 0;
	int rc;

	int decided = 0;

	for (int v = 0; v < h->c->o.vcpus; v++) {
		uint64_t w, events = 0;

		rc = sample(h, v, &halts);
		if (rc)
			return rc;
		for (int b = 0; b < HIST_N; b++)
			events += h->idle[v][b];
		if (events < HP_MIN_EVENTS)
			continue;
		rc = idlepoll_hist_window(h->idle[v], HIST_N,
					  h->c->o.host_halt_cost_ns,
					  HP_MAX_WINDOW_NS, &w);
		if (rc)
			return rc;
		decided = 1;
		if (w > window)
			window = w; /* one ceiling for the VM */
	}
	if (!decided)
		return 0; /* too few halts to say: keep the ceiling */
	if (window == h->window)
		return 0;
	rc = hp_set(h->c, window);
	if (rc)
		return rc;
	fprintf(stderr, "exitless-vmm: halt-poll smart: ceiling %" PRIu64
		" -> %" PRIu64 " ns (%" PRIu64 " halts in the last %u ms)\n",
		h->window, window, halts, h->period_ms);
	h->window = window;
	h->changes++;
	return 0;
}

static void *hp_thread(void *arg)
{
	struct hpctl *h = arg;
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		int rc;

		t.tv_nsec += (long)h->period_ms * 1000000L;
		t.tv_sec += t.tv_nsec / 1000000000L;
		t.tv_nsec %= 1000000000L;
		while (!h->stop &&
		       pthread_cond_timedwait(&h->cond, &h->lock, &t) != ETIMEDOUT)
			;
		if (h->stop)
			break;
		pthread_mutex_unlock(&h->lock);
		rc = decide(h);
		pthread_mutex_lock(&h->lock);
		if (rc) {
			fprintf(stderr, "exitless-vmm: halt-poll smart: %s; "
				"stopped deciding\n", strerror(-rc));
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static int hp_smart_start(struct ctx *c, uint32_t period_ms)
{
	struct hpctl *h = c->hpctl;
	pthread_condattr_t ca;
	uint64_t halts = 0;
	int rc;

	if (!h)
		return -EOPNOTSUPP;
	/* a fresh histogram per phase, from where the counters stand now;
	 * the ceiling starts where the last smart phase left it */
	memset(h->idle, 0, sizeof(h->idle));
	for (int v = 0; v < c->o.vcpus; v++) {
		rc = sample(h, v, &halts);
		if (rc)
			return rc;
	}
	memset(h->idle, 0, sizeof(h->idle));
	rc = hp_set(c, h->window);
	if (rc)
		return rc;
	h->changes = 0;
	h->stop = 0;
	h->period_ms = period_ms ? period_ms : 1;
	pthread_cond_destroy(&h->cond);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* not a vCPU thread: the watchdog's signals are not its business */
	alarm_mask(SIG_BLOCK);
	rc = -pthread_create(&h->thread, NULL, hp_thread, h);
	alarm_mask(SIG_UNBLOCK);
	h->running = rc == 0;
	return rc;
}

int hp_begin(struct ctx *c, const struct hp_mode *m)
{
	switch (m->kind) {
	case HP_OFF:
		return hp_set(c, 0);
	case HP_KVM:
		return hp_set(c, HP_KVM_DEFAULT_NS);
	case HP_SMART:
		return hp_smart_start(c, m->period_ms);
	default:
		return 0;
	}
}

uint64_t hp_end(struct ctx *c)
{
	struct hpctl *h = c->hpctl;

	if (!h || !h->running)
		return 0;
	pthread_mutex_lock(&h->lock);
	h->stop = 1;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	h->running = 0;
	return h->changes;
}

int hp_read_hists(struct ctx *c, uint64_t out[3][HP_HIST_N])
{
	if (!c->hpctl)
		return -ENOENT;
	for (int j = 0; j < 3; j++) {
		int rc = stats_read_array(&c->hpctl->st[0], (uint32_t)j, out[j],
					  HIST_N);

		if (rc < 0)
			return rc;
	}
	return 0;
}

uint64_t hp_window(const struct ctx *c)
{
	return c->hpctl ? c->hpctl->window : 0;
}

void hp_destroy(struct ctx *c)
{
	struct hpctl *h = c->hpctl;

	if (!h)
		return;
	hp_end(c);
	for (int i = 0; i < c->o.vcpus; i++)
		stats_close(&h->st[i]);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
	c->hpctl = NULL;
}
