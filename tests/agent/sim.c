/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "sim.h"
#include "tsc.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* A timer nobody delivers within this long after its deadline is lost. */
#define LOST_NS 2000000000ull

static uint64_t khz;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void calibrate(void)
{
	khz = tsc_per_us() * 1000;
}

uint64_t sim_tsc(void)
{
	return tsc_now();
}

uint64_t sim_ns_to_tsc(uint64_t ns)
{
	pthread_once(&once, calibrate);
	return (uint64_t)((unsigned __int128)ns * khz / 1000000u);
}

uint64_t sim_tsc_to_ns(uint64_t tsc)
{
	pthread_once(&once, calibrate);
	return (uint64_t)((unsigned __int128)tsc * 1000000u / khz);
}

void sim_sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void sim_hw_wait(uint64_t tsc)
{
	uint64_t now = sim_tsc();

	if (tsc > now)
		sim_sleep_ns(sim_tsc_to_ns(tsc - now));
}

struct pvtimer_area *sim_area_ex(uint32_t slots, uint64_t horizon_ns,
				 uint8_t vmin, uint8_t vmax)
{
	PVTIMER_AREA_OPTS(o, .slot_count = slots,
			  .margin_tsc = sim_ns_to_tsc(5000),
			  .max_horizon_tsc = sim_ns_to_tsc(horizon_ns),
			  .tsc_khz = (uint32_t)(sim_ns_to_tsc(1000000) / 1000),
			  .features = PVTIMER_F_FIRED_TSC, .vector_min = vmin,
			  .vector_max = vmax);
	struct pvtimer_area *a = NULL;

	return pvtimer_area_new(&o, &a) == 0 ? a : NULL;
}

struct pvtimer_area *sim_area(uint32_t slots)
{
	return sim_area_ex(slots, 1000000000ull, 0, 0);
}

static struct pvtimer_abi_slot *raw_slot(struct pvtimer_area *area,
					 uint32_t slot)
{
	char *mem = pvtimer_area_mem(area);
	const struct pvtimer_abi_header *h = (const void *)mem;

	return (void *)(mem + h->slots_offset + (size_t)slot * h->slot_stride);
}

void sim_raw_pending(struct pvtimer_area *area, uint32_t slot)
{
	char *mem = pvtimer_area_mem(area);
	const struct pvtimer_abi_header *h = (const void *)mem;
	struct pvtimer_abi_pending *p = (void *)(mem + h->pending_offset);

	__atomic_fetch_or(&p->words[slot / 64], 1ull << (slot % 64),
			  __ATOMIC_SEQ_CST);
	__atomic_fetch_or(&p->summary, 1ull << (slot / 64), __ATOMIC_SEQ_CST);
}

void sim_raw_publish(struct pvtimer_area *area, uint32_t slot, uint32_t gen,
		     uint64_t deadline, uint8_t vector, uint8_t flags)
{
	struct pvtimer_abi_slot *s = raw_slot(area, slot);
	uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED) & ~1u;

	__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->arm_gen, gen, __ATOMIC_RELEASE);
	__atomic_store_n(&s->deadline_tsc, deadline, __ATOMIC_RELEASE);
	__atomic_store_n(&s->vector, vector, __ATOMIC_RELEASE);
	__atomic_store_n(&s->arm_flags, flags, __ATOMIC_RELEASE);
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
	sim_raw_pending(area, slot);
}

void sim_raw_hold_odd(struct pvtimer_area *area, uint32_t slot)
{
	struct pvtimer_abi_slot *s = raw_slot(area, slot);

	__atomic_store_n(&s->seq, __atomic_load_n(&s->seq, __ATOMIC_RELAXED) | 1u,
			 __ATOMIC_RELEASE);
}

uint64_t sim_status(struct pvtimer_area *area, uint32_t slot)
{
	return __atomic_load_n(&raw_slot(area, slot)->status_word,
			       __ATOMIC_ACQUIRE);
}

int sim_vcpu_init(struct sim_vcpu *v, struct pvtimer_area *area, uint32_t slot)
{
	*v = (struct sim_vcpu){0};
	v->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->efd < 0)
		return -errno;
	return pvtimer_guest_init(&v->g, pvtimer_area_mem(area),
				  pvtimer_area_bytes(area), slot, 0xec);
}

void sim_vcpu_fini(struct sim_vcpu *v)
{
	close(v->efd);
}

struct pvagent_injector sim_vcpu_injector(const struct sim_vcpu *v)
{
	return (struct pvagent_injector){ .kind = PVAGENT_INJ_IRQFD, .fd = v->efd };
}

static void expired(struct sim_vcpu *v, uint64_t deadline)
{
	uint64_t now = sim_tsc(), late;

	if (now < deadline) {
		v->early++;
		return;
	}
	late = sim_tsc_to_ns(now - deadline);
	if (late > v->late_max_ns)
		v->late_max_ns = late;
	v->pv_fires++;
}

/* Halt: wait for the eventfd; returns 0 on an interrupt, -1 when lost. */
static int halt(struct sim_vcpu *v, uint64_t deadline)
{
	struct pollfd pfd = { .fd = v->efd, .events = POLLIN };
	uint64_t limit = deadline + sim_ns_to_tsc(LOST_NS), now, cnt;

	for (;;) {
		now = sim_tsc();
		if (now >= limit)
			return -1;
		if (poll(&pfd, 1, (int)(sim_tsc_to_ns(limit - now) / 1000000) + 1) > 0 &&
		    read(v->efd, &cnt, sizeof(cnt)) == (ssize_t)sizeof(cnt))
			return 0;
	}
}

void sim_vcpu_timer(struct sim_vcpu *v, uint64_t deadline)
{
	if (pvtimer_guest_arm(&v->g, deadline) != PVTIMER_GUEST_PV) {
		v->fallbacks++;
		sim_hw_wait(deadline);
		return;
	}
	for (;;) {
		if (pvtimer_guest_before_halt(&v->g) != PVTIMER_GUEST_PV) {
			v->late_halts++;
			sim_hw_wait(deadline);
			return;
		}
		if (halt(v, deadline) < 0) {
			v->lost++;
			pvtimer_guest_cancel(&v->g);
			return;
		}
		switch (pvtimer_guest_on_interrupt(&v->g)) {
		case PVTIMER_GUEST_IRQ_EXPIRED:
			expired(v, deadline);
			return;
		case PVTIMER_GUEST_IRQ_HANDBACK:
			v->handbacks++;
			sim_hw_wait(deadline);
			return;
		default:
			break; /* spurious: halt again */
		}
	}
}

/* A guest following the rule may be told to fall back when the agent
 * thread was preempted past its promise (this machine is shared); such a
 * guest would use its hardware timer. Here we want the pv path, so retry a
 * bounded number of times: an agent that never keeps a promise fails. */
uint64_t sim_arm_pv_ahead(struct pvtimer_guest *g, uint64_t ahead_ns)
{
	for (int i = 0; i < 2000; i++) {
		uint64_t dl = sim_tsc() + sim_ns_to_tsc(ahead_ns);

		if (pvtimer_guest_arm(g, dl) == PVTIMER_GUEST_PV)
			return dl;
		sim_sleep_ns(1000000);
	}
	return 0;
}

int sim_arm_pv(struct pvtimer_guest *g, uint64_t deadline)
{
	int r = -1;

	/* up to 2 s: CI shares two CPUs with sanitizer builds */
	for (int i = 0; i < 2000 && r != PVTIMER_GUEST_PV; i++) {
		r = pvtimer_guest_arm(g, deadline);
		if (r != PVTIMER_GUEST_PV)
			sim_sleep_ns(1000000);
	}
	return r;
}
