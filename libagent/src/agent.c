/* SPDX-License-Identifier: MIT */
/* The handle: options, areas and slots, and the life cycle of the thread.
 * While the thread runs, every change to what it services is a command it
 * runs between two passes, so the engine itself takes no lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEF_SPIN_THRESHOLD_NS 200000ull
#define DEF_MAX_SLEEP_NS 1000000ull
#define DEF_SPIN_SYNC_NS 20000ull
#define DEF_WAKE_BOUND_NS 150000ull

/* End of the last field this version knows: bytes past it in a caller's
 * struct (tail padding included) must be zero, so that a later field placed
 * there is never read from an older caller's garbage (libbpf's rule). */
#define OPTS_KNOWN_END \
	(offsetof(struct pvagent_opts, tsc_khz) + sizeof(uint32_t))

static int copy_opts(struct pvagent_opts *dst, const struct pvagent_opts *src)
{
	size_t n;

	memset(dst, 0, sizeof(*dst));
	dst->sz = sizeof(*dst);
	if (!src)
		return 0;
	if (src->sz < sizeof(size_t))
		return -EINVAL;
	for (size_t i = OPTS_KNOWN_END; i < src->sz; i++)
		if (((const unsigned char *)src)[i])
			return -EINVAL;
	/* an older, shorter caller: its fields, defaults for the rest */
	n = src->sz < OPTS_KNOWN_END ? src->sz : OPTS_KNOWN_END;
	memcpy(dst, src, n);
	dst->sz = sizeof(*dst);
	return 0;
}

static int check_opts(struct pvagent_opts *o)
{
	if (o->mode > PVAGENT_MODE_ADAPTIVE || o->cpu_policy > PVAGENT_CPU_PICK ||
	    (o->vcpu_cpu_count && !o->vcpu_cpus))
		return -EINVAL;
	if (o->sched_policy != SCHED_OTHER && o->sched_policy != SCHED_FIFO &&
	    o->sched_policy != SCHED_RR)
		return -EINVAL;
	/* a promise is a sleep plus a bound: each at most half a second */
	if (o->max_sleep_ns > AGENT_BOUND_CAP_NS ||
	    o->wake_bound_ns > AGENT_BOUND_CAP_NS ||
	    o->spin_sync_ns > AGENT_BOUND_CAP_NS ||
	    o->spin_threshold_ns > AGENT_BOUND_CAP_NS)
		return -EINVAL;
	/* a TSC above 100 GHz is a unit mistake (Hz for kHz), not a CPU */
	if (o->tsc_khz > 100000000u)
		return -EINVAL;
	if (o->sched_policy != SCHED_OTHER &&
	    (o->sched_priority < sched_get_priority_min(o->sched_policy) ||
	     o->sched_priority > sched_get_priority_max(o->sched_policy)))
		return -EINVAL;
	if (!o->spin_threshold_ns)
		o->spin_threshold_ns = DEF_SPIN_THRESHOLD_NS;
	if (!o->max_sleep_ns)
		o->max_sleep_ns = DEF_MAX_SLEEP_NS;
	if (!o->spin_sync_ns)
		o->spin_sync_ns = DEF_SPIN_SYNC_NS;
	if (!o->wake_bound_ns)
		o->wake_bound_ns = DEF_WAKE_BOUND_NS;
	return 0;
}

static int choose_cpu(struct pvagent *a)
{
	switch (a->opts.cpu_policy) {
	case PVAGENT_CPU_FIXED:
		if (a->opts.cpu < 0 || a->opts.cpu >= CPU_SETSIZE ||
		    a->opts.cpu >= get_nprocs_conf())
			return -ERANGE;
		return a->opts.cpu;
	case PVAGENT_CPU_PICK:
		return pvagent_pick_cpu(a->vcpu_cpus, a->opts.vcpu_cpu_count);
	default:
		return -1;
	}
}

int pvagent_new(const struct pvagent_opts *opts, struct pvagent **out)
{
	struct pvagent *a;
	int rc;

	if (!out)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->mb.wake_fd = -1;
	rc = copy_opts(&a->opts, opts);
	if (!rc)
		rc = check_opts(&a->opts);
	if (rc)
		goto fail;
	if (a->opts.vcpu_cpu_count) {
		a->vcpu_cpus = calloc(a->opts.vcpu_cpu_count, sizeof(int));
		if (!a->vcpu_cpus) {
			rc = -ENOMEM;
			goto fail;
		}
		memcpy(a->vcpu_cpus, a->opts.vcpu_cpus,
		       a->opts.vcpu_cpu_count * sizeof(int));
	}
	a->opts.vcpu_cpus = NULL; /* the copy above is what we keep */
	a->cpu = choose_cpu(a);
	if (a->opts.cpu_policy != PVAGENT_CPU_ANY && a->cpu < 0) {
		rc = a->cpu;
		goto fail;
	}
	/* the caller's rate spares the ~10 ms calibration */
	if (a->opts.tsc_khz)
		agent_set_tsc_khz(a->opts.tsc_khz);
	agent_clock_init(&a->clk, a->opts.tsc_khz ? a->opts.tsc_khz
						   : agent_tsc_khz());
	rc = agent_mailbox_init(&a->mb);
	if (rc)
		goto fail;
	/* no ring (no liburing, or a kernel refusing it): write() it is */
	if (agent_uring_new(&a->uring) < 0)
		a->uring = NULL;
	/* io_uring only where it is cheaper: measured, unless told */
	if (!a->opts.uring_min_batch)
		a->opts.uring_min_batch = a->uring ? agent_uring_calibrate(a->uring)
						   : PVAGENT_URING_NEVER;
	a->st.uring_min_batch = a->uring ? a->opts.uring_min_batch
					 : PVAGENT_URING_NEVER;
	a->spin_thr_tsc = agent_ns_to_tsc(&a->clk, a->opts.spin_threshold_ns);
	a->max_sleep_tsc = agent_ns_to_tsc(&a->clk, a->opts.max_sleep_ns);
	a->park_slack_tsc = a->spin_thr_tsc;
	agent_promise_init(&a->pr, &a->clk, a->opts.spin_sync_ns,
			   a->opts.wake_bound_ns, AGENT_BOUND_CAP_NS);
	agent_park_init(a);
	a->st.cpu = a->cpu;
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
fail:
	free(a->vcpu_cpus);
	free(a);
	return rc;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Called with a->lock held. Runs @c on the thread, or here when stopped. */
static int run_cmd(struct pvagent *a, const struct agent_cmd *c)
{
	if (a->state == AGENT_STOPPED)
		return agent_control_exec(a, c);
	return agent_mailbox_post(&a->mb, c);
}

static int stop_locked(struct pvagent *a)
{
	struct agent_cmd c = { .kind = AGENT_CMD_STOP };

	if (a->state == AGENT_STOPPED)
		return -EALREADY;
	run_cmd(a, &c);
	pthread_join(a->thread, NULL);
	a->state = AGENT_STOPPED;
	a->run_acc_ns += mono_ns() - a->run_start_ns;
	return 0;
}

void pvagent_destroy(struct pvagent *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	stop_locked(a);
	pthread_mutex_unlock(&a->lock);
	for (uint32_t k = 0; k < a->nareas; k++) {
		free(a->areas[k].slots);
		free(a->areas[k].todo);
		free(a->areas[k].taken);
	}
	free(a->areas);
	agent_heap_free(&a->heap);
	free(a->shots);
	free(a->uring_fds);
	free(a->shot_sent);
	free(a->parked);
	agent_uring_destroy(a->uring);
	agent_mailbox_fini(&a->mb);
	free(a->vcpu_cpus);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static int attach_locked(struct pvagent *a, struct pvtimer_area *pa,
			 const struct pvtimer_tsc_map *map, uint32_t *area_id)
{
	struct agent_area *areas, *ar;
	uint32_t n = pvtimer_area_slot_count(pa);

	if (a->state != AGENT_STOPPED)
		return -EBUSY;
	for (uint32_t k = 0; k < a->nareas; k++)
		if (a->areas[k].pa == pa)
			return -EEXIST;
	areas = realloc(a->areas, (a->nareas + 1) * sizeof(*areas));
	if (!areas)
		return -ENOMEM;
	a->areas = areas;
	ar = &areas[a->nareas];
	*ar = (struct agent_area){ .pa = pa, .nslots = n };
	ar->map = map ? *map : (struct pvtimer_tsc_map){ .mult = 1 };
	ar->unscaled = ar->map.mult == 1 && ar->map.shift == 0;
	ar->slots = calloc(n, sizeof(*ar->slots));
	ar->todo = calloc((n + 63) / 64, sizeof(*ar->todo));
	ar->taken = calloc((n + 63) / 64, sizeof(*ar->taken));
	if (!ar->slots || !ar->todo || !ar->taken) {
		free(ar->slots);
		free(ar->todo);
		free(ar->taken);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		ar->slots[i].heap_idx = AGENT_HEAP_NONE;
		ar->slots[i].parked_idx = AGENT_PARK_NONE;
		ar->slots[i].area = a->nareas;
		ar->slots[i].index = i;
		/* unbound: its guest must not rely on us */
		pvtimer_host_set_slot_sync(pa, i, PVTIMER_SYNC_NEVER);
	}
	if (area_id)
		*area_id = a->nareas;
	a->nareas++;
	return 0;
}

int pvagent_attach_area(struct pvagent *a, struct pvtimer_area *pa,
		      const struct pvtimer_tsc_map *map, uint32_t *area_id)
{
	int rc;

	if (!a || !pa)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	rc = attach_locked(a, pa, map, area_id);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

static int check_slot(struct pvagent *a, uint32_t area, uint32_t slot)
{
	if (area >= a->nareas)
		return -ENOENT;
	return slot < a->areas[area].nslots ? 0 : -ERANGE;
}

/* A command about one slot, checked against the attached areas. */
static int slot_cmd(struct pvagent *a, struct agent_cmd *c)
{
	int rc;

	pthread_mutex_lock(&a->lock);
	c->live = a->state == AGENT_RUNNING;
	rc = check_slot(a, c->area, c->slot);
	if (!rc)
		rc = run_cmd(a, c);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

int pvagent_bind_slot(struct pvagent *a, uint32_t area, uint32_t slot,
		    const struct pvagent_injector *inj)
{
	struct agent_cmd c = { .kind = AGENT_CMD_BIND, .area = area,
			       .slot = slot };
	int rc;

	if (!a)
		return -EINVAL;
	rc = agent_injector_check(inj);
	if (rc)
		return rc;
	c.inj = *inj;
	return slot_cmd(a, &c);
}

int pvagent_detach_slot(struct pvagent *a, uint32_t area, uint32_t slot)
{
	struct agent_cmd c = { .kind = AGENT_CMD_DETACH, .area = area,
			       .slot = slot };

	return a ? slot_cmd(a, &c) : -EINVAL;
}

/* Everything the engine may need per pass is allocated before it runs. */
static int prepare(struct pvagent *a)
{
	uint32_t total = 0;
	void *p;
	int rc;

	for (uint32_t k = 0; k < a->nareas; k++)
		total += a->areas[k].nslots;
	rc = agent_heap_reserve(&a->heap, total);
	if (rc)
		return rc;
	if (total > a->shots_cap) {
		p = realloc(a->shots, total * sizeof(*a->shots));
		if (!p)
			return -ENOMEM;
		a->shots = p;
		p = realloc(a->uring_fds, total * sizeof(*a->uring_fds));
		if (!p)
			return -ENOMEM;
		a->uring_fds = p;
		p = realloc(a->shot_sent, total);
		if (!p)
			return -ENOMEM;
		a->shot_sent = p;
		p = realloc(a->parked, total * sizeof(*a->parked));
		if (!p)
			return -ENOMEM;
		a->parked = p;
		a->shots_cap = total;
	}
	return 0;
}

/* The agent thread is created with every signal blocked (it inherits the
 * mask): a VMM's own signals, such as the one that kicks vCPU threads out
 * of KVM_RUN, must never be delivered to it. */
static int create_quiet_thread(struct pvagent *a, pthread_attr_t *attr)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	rc = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (rc)
		return -rc;
	rc = -pthread_create(&a->thread, attr, agent_engine_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static int spawn(struct pvagent *a)
{
	pthread_attr_t attr;
	int rc;

	/* a policy we may not set is not fatal: "if permitted" */
	for (int sched = 1; sched >= 0; sched--) {
		if (!sched && a->opts.sched_policy == SCHED_OTHER)
			break;
		rc = agent_thread_attr(a, &attr, sched);
		if (rc)
			return rc;
		rc = create_quiet_thread(a, &attr);
		pthread_attr_destroy(&attr);
		if (!rc) {
			a->st.sched_applied = (uint32_t)sched;
			/* so that top -H and perf show what it is */
			pthread_setname_np(a->thread, "exitless-agent");
			return 0;
		}
		if (rc != -EPERM)
			return rc;
	}
	return rc;
}

int pvagent_start(struct pvagent *a)
{
	int rc;

	if (!a)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	if (a->state == AGENT_RUNNING)
		rc = -EALREADY;
	else if (a->state == AGENT_PAUSED)
		rc = -EBUSY;
	else if (!a->nareas)
		rc = -ENOENT;
	else
		rc = prepare(a);
	if (!rc) {
		a->quit = false;
		a->paused = false;
		a->run_start_ns = mono_ns();
		rc = spawn(a);
	}
	if (!rc)
		a->state = AGENT_RUNNING;
	pthread_mutex_unlock(&a->lock);
	return rc;
}

int pvagent_stop(struct pvagent *a)
{
	int rc;

	if (!a)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	rc = stop_locked(a);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* Pause or resume a running agent. */
static int transition(struct pvagent *a, enum agent_cmd_kind kind)
{
	struct agent_cmd c = { .kind = kind };
	bool pause = kind == AGENT_CMD_PAUSE;
	int rc;

	if (!a)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	if (a->state == (pause ? AGENT_RUNNING : AGENT_PAUSED))
		rc = run_cmd(a, &c);
	else if (pause && a->state == AGENT_STOPPED)
		rc = -ESRCH;
	else
		rc = -EALREADY;
	if (!rc)
		a->state = pause ? AGENT_PAUSED : AGENT_RUNNING;
	pthread_mutex_unlock(&a->lock);
	return rc;
}

int pvagent_pause(struct pvagent *a)
{
	return transition(a, AGENT_CMD_PAUSE);
}

int pvagent_resume(struct pvagent *a)
{
	return transition(a, AGENT_CMD_RESUME);
}
