/* SPDX-License-Identifier: MIT */
/* Fuzz target: a whole agent over a hostile area. A real libagent thread
 * (public API, dedicated or adaptive, the recording callback injector of
 * agent_pass_check.c) services an area whose bytes the input writes, while
 * this thread keeps writing it from the input's script: arms and cancels
 * through the guest helpers, raw bytes anywhere in the guest's part (or
 * anywhere at all, "wild"), raw arms with any vector and flags, pending
 * bits for real and stray slots; and it drives the host: waits for passes,
 * pause/resume, detach/bind, stop/start, failing and stalling injections.
 * Then it stops the agent (stop must return) and destroys everything.
 *
 * Invariants (besides no crash, no UB, no leak under the sanitizers): no
 * shot for an unbound slot, a shot's vector is one the host accepts, a
 * fire of a generation armed through the helpers is never early nor
 * repeated, and the agent counted every injection and every failure.
 *
 * Input: 4 config bytes (see setup()), then 4-byte operations (run_op()). */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "agent_pass.h"
#define PVTIMER_GUEST_READ_TSC() fz_guest_tsc()
#include "exitless/pvtimer_guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 192u
#define WAIT_TSC (1ull << 28) /* ~0.1 s: a noisy machine, not a hang */

struct harness {
	struct pvagent *ag;
	size_t bytes;
	int running, paused;
	int guest_ok[FZ_MAX_SLOTS];
	struct pvtimer_guest g[FZ_MAX_SLOTS];
};

static const uint32_t slot_counts[4] = {1, 3, 8, FZ_MAX_SLOTS};
static const uint64_t horizons[4] = {0, 1ull << 18, 1ull << 22, 1ull << 30};
static const uint8_t vectors[4] = {0xec, 0x30, 0x41, 0xef};

static uint64_t tsc_base(uint8_t sel)
{
	switch (sel & 3) {
	case 0: return 1ull << 40;
	case 1: return 1ull << 24;
	/* modular TSC (ABI 1.1): the guest clock wraps during the run */
	case 2: return PVTIMER_ABI_MINOR >= 1 ? -(1ull << 26) : 1ull << 33;
	default: return (uint64_t)sel << 48;
	}
}

static struct pvtimer_abi_slot *slot_mem(uint32_t s)
{
	return (struct pvtimer_abi_slot *)(fz.mem + fz.slots_offset +
					   (size_t)s * PVTIMER_ABI_SLOT_STRIDE);
}

static void set_pending(uint32_t word, uint64_t bits)
{
	struct pvtimer_abi_pending *p =
		(struct pvtimer_abi_pending *)(fz.mem + PVTIMER_ABI_HEADER_SIZE);

	__atomic_fetch_or(&p->words[word], bits, __ATOMIC_SEQ_CST);
	__atomic_fetch_or(&p->summary, 1ull << word, __ATOMIC_SEQ_CST);
}

static void bind_slot(struct harness *h, uint32_t s)
{
	struct pvagent_injector inj = { .kind = PVAGENT_INJ_CALLBACK, .fn = fz_inject };

	__atomic_store_n(&fz.slot[s].bound, 1, __ATOMIC_RELEASE);
	FZ_MUST(pvagent_bind_slot(h->ag, fz.area_id, s, &inj) == 0);
}

static void detach_slot(struct harness *h, uint32_t s)
{
	FZ_MUST(pvagent_detach_slot(h->ag, fz.area_id, s) == 0);
	/* a handback shot may come during the detach, none after */
	__atomic_store_n(&fz.slot[s].bound, 0, __ATOMIC_RELEASE);
}

static int setup(struct harness *h, const uint8_t *cfg)
{
	struct pvtimer_tsc_map map;
	uint64_t base = tsc_base(cfg[2] >> 2);
	PVTIMER_AREA_OPTS(o, .slot_count = slot_counts[cfg[0] >> 1 & 3],
			  .features = (cfg[0] & 8) ? PVTIMER_F_FIRED_TSC : 0,
			  .max_horizon_tsc = horizons[cfg[0] >> 4 & 3],
			  .vector_min = (cfg[0] & 0x80) ? 0x40 : 0,
			  .vector_max = (cfg[0] & 0x80) ? 0xef : 0);
	PVAGENT_OPTS(ao, .mode = (cfg[0] & 1) ? PVAGENT_MODE_ADAPTIVE : PVAGENT_MODE_DEDICATED,
		   .uring_min_batch = PVAGENT_URING_NEVER,
		   .spin_threshold_ns = 5000, .max_sleep_ns = 20000);

	memset(&fz, 0, sizeof(fz));
	fz.nslots = o.slot_count;
	fz.wild = !!(cfg[0] & 0x40);
	fz.fired_tsc = !!(cfg[0] & 8);
	fz.vector_min = (cfg[0] & 0x80) ? 0x40 : PVTIMER_VECTOR_MIN;
	fz.vector_max = (cfg[0] & 0x80) ? 0xef : PVTIMER_VECTOR_MAX;
	fz.tsc_offset = (int64_t)(base - __builtin_ia32_rdtsc());
	h->bytes = pvtimer_area_size_for(fz.nslots);
	fz.mem = aligned_alloc(4096, h->bytes);
	FZ_MUST(fz.mem);
	o.mem = fz.mem;
	o.mem_size = h->bytes;
	FZ_MUST(pvtimer_area_new(&o, &fz.area) == 0);
	fz.slots_offset = ((struct pvtimer_abi_header *)(void *)fz.mem)->slots_offset;
	FZ_MUST(pvtimer_tsc_map_init(&map, 1000000, 1000000, fz.tsc_offset) == 0);
	FZ_MUST(pvagent_new(&ao, &h->ag) == 0);
	FZ_MUST(pvagent_attach_area(h->ag, fz.area, &map, &fz.area_id) == 0);
	for (uint32_t s = 0; s < fz.nslots; s++) {
		h->guest_ok[s] = pvtimer_guest_init(&h->g[s], fz.mem, h->bytes, s,
						    vectors[cfg[2] & 3]) == 0;
		if (cfg[1] & (1u << (s < 7 ? s : 7)))
			bind_slot(h, s);
	}
	return cfg[3] % 16; /* operations run before the agent starts */
}

static void start(struct harness *h)
{
	FZ_MUST(pvagent_start(h->ag) == 0);
	h->running = 1;
	h->paused = 0;
}

static void stop(struct harness *h)
{
	FZ_MUST(pvagent_stop(h->ag) == 0);
	h->running = 0;
	h->paused = 0;
}

/* Let the agent run @passes passes, then let @spin ticks pass. */
static void wait_passes(const struct harness *h, uint32_t passes, uint64_t spin)
{
	struct pvagent_stats st = { .sz = sizeof(st) };
	uint64_t t0 = __builtin_ia32_rdtsc(), want;

	if (h->running && !h->paused) {
		FZ_MUST(pvagent_get_stats(h->ag, &st) == 0);
		want = st.scans + passes;
		while (st.scans < want && __builtin_ia32_rdtsc() - t0 < WAIT_TSC) {
			sched_yield(); /* the agent may share our CPU */
			FZ_MUST(pvagent_get_stats(h->ag, &st) == 0);
		}
	}
	t0 = __builtin_ia32_rdtsc();
	while (__builtin_ia32_rdtsc() - t0 < spin)
		__builtin_ia32_pause();
}

static void guest_arm(struct harness *h, uint32_t s, uint8_t b, uint8_t c)
{
	struct pvtimer_guest *g = &h->g[s];
	uint64_t delta = ((uint64_t)b | (uint64_t)(c & 0x7f) << 8) << 4;
	uint64_t now = fz_guest_tsc();
	uint64_t deadline = (c & 0x80) ? now - delta : now + delta;

	if (!h->guest_ok[s])
		return;
	/* known before it is visible: the injector may see it at once */
	fz_note_arm(s, g->gen + 1, deadline);
	(void)pvtimer_guest_arm(g, deadline);
}

/* A raw byte of guest memory. Unless wild, the host lines of the slots are
 * left alone (the guest could write them, but then the status word tells
 * the injector nothing); either way the guest line it hits is tainted. */
static void raw_write(const struct harness *h, uint8_t a, uint8_t b, uint8_t c)
{
	size_t off = ((size_t)a | (size_t)b << 8 | (size_t)(c & 0xf0) << 12) % h->bytes;

	if (off >= fz.slots_offset) {
		size_t s = (off - fz.slots_offset) / PVTIMER_ABI_SLOT_STRIDE;
		size_t in = (off - fz.slots_offset) % PVTIMER_ABI_SLOT_STRIDE;

		if (!fz.wild && in >= 64)
			off -= 64;
		if (s < fz.nslots)
			__atomic_store_n(&fz.slot[s].tainted, 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(fz.mem + off, (uint8_t)(c ^ a), __ATOMIC_RELAXED);
}

/* An arm written by hand: any vector, any flags, the guest's seqlock. */
static void raw_arm(uint32_t s, uint8_t b, uint8_t c)
{
	struct pvtimer_abi_slot *sl = slot_mem(s);
	uint32_t seq = __atomic_load_n(&sl->seq, __ATOMIC_RELAXED);
	uint32_t gen = __atomic_load_n(&sl->arm_gen, __ATOMIC_RELAXED);

	__atomic_store_n(&fz.slot[s].tainted, 1, __ATOMIC_RELEASE);
	/* release stores keep the odd seq ahead of the fields (no fence:
	 * TSan cannot model one) */
	__atomic_store_n(&sl->seq, seq | 1u, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->arm_gen, gen + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&sl->deadline_tsc, fz_guest_tsc() + ((uint64_t)b << (c & 31)),
			 __ATOMIC_RELEASE);
	__atomic_store_n(&sl->vector, b, __ATOMIC_RELEASE);
	__atomic_store_n(&sl->arm_flags, (uint8_t)(c >> 5), __ATOMIC_RELEASE);
	__atomic_store_n(&sl->seq, (seq | 1u) + 1, __ATOMIC_RELEASE);
	set_pending(s / 64, 1ull << (s % 64));
}

static void run_op(struct harness *h, const uint8_t *op)
{
	uint32_t s = op[1] % fz.nslots;

	switch (op[0] % 12) {
	case 0:
	case 1: guest_arm(h, s, op[2], op[3]); break;
	case 2:
		if (h->guest_ok[s])
			pvtimer_guest_cancel(&h->g[s]);
		break;
	case 3: raw_write(h, op[1], op[2], op[3]); break;
	case 4: /* real bits, or bits naming no slot */
		set_pending((op[1] >> 6) % ((fz.nslots + 63) / 64),
			    (op[1] & 0x20) ? (uint64_t)op[2] << (op[3] % 57)
					   : 1ull << (s % 64));
		break;
	case 5: raw_arm(s, op[2], op[3]); break;
	case 6: wait_passes(h, 1 + op[1] % 2, (uint64_t)op[2] << 8); break;
	case 7:
		if (!h->running)
			break;
		FZ_MUST((h->paused ? pvagent_resume(h->ag) : pvagent_pause(h->ag)) == 0);
		h->paused = !h->paused;
		break;
	case 8:
		if (__atomic_load_n(&fz.slot[s].bound, __ATOMIC_RELAXED))
			detach_slot(h, s);
		else
			bind_slot(h, s);
		break;
	case 9:
		if (h->running)
			stop(h);
		else
			start(h);
		break;
	case 10: /* failing calls, and a host thread stalled in one */
		__atomic_store_n(&fz.fail_pattern,
				 (uint32_t)op[1] * 0x01010101u & (op[2] * 0x00810204u),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&fz.stall_tsc, (uint64_t)op[3] << 12, __ATOMIC_RELAXED);
		break;
	default:
		if (h->guest_ok[s])
			(void)((op[2] & 1) ? pvtimer_guest_on_interrupt(&h->g[s])
					   : pvtimer_guest_before_halt(&h->g[s]));
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness *h;
	size_t nops, early;

	if (size < 4)
		return 0;
	h = calloc(1, sizeof(*h));
	FZ_MUST(h);
	early = (size_t)setup(h, data);
	nops = (size - 4) / 4 < MAX_OPS ? (size - 4) / 4 : MAX_OPS;
	for (size_t i = 0; i < nops; i++) {
		if (i == early && !h->running)
			start(h);
		run_op(h, data + 4 + 4 * i);
	}
	if (!h->running && nops <= early)
		start(h);
	wait_passes(h, 2, 0);
	if (h->running)
		stop(h);
	fz_check_stats(h->ag);
	pvagent_destroy(h->ag);
	pvtimer_area_destroy(fz.area);
	free(fz.mem);
	free(h);
	return 0;
}
