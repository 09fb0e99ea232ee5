/* SPDX-License-Identifier: MIT */
/* Fuzz target: pvtimer_area_validate() and pvtimer_area_new() with
 * PVTIMER_AREA_ADOPT over guest-controlled bytes (a restored snapshot, an
 * area the guest had every chance to scribble on), then the host calls a
 * restored area gets: activate, a pending pass, a read of every slot, a
 * fire and a handback, deactivate.
 *
 * The memory is a genuine area patched by the input, in an allocation of
 * exactly the claimed size, so any host access beyond it is an ASan report.
 * Invariants: no crash, no out-of-bounds access; validate and adopt agree;
 * an adopted area is no larger than the memory; every pass bounded by the
 * slot count; every accepted snapshot within the header's limits; a slot
 * whose status said (g, FIRED) and whose guest line still arms g is not
 * fired again (a restore never repeats a fire).
 *
 * Input: [0..1] slot count, [2] create options, [3..4] claimed size delta,
 * [5] adopt options, then patches: [off lo, off mid, off hi, len] + len
 * bytes written at off % size. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exitless/pvtimer.h"
#include "exitless/pvtimer_guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW (1ull << 40)
#define MUST(cond)                                                          \
	do {                                                                \
		if (!(cond))                                                \
			__builtin_trap();                                   \
	} while (0)

/* A genuine area of @slots slots in @mem, built by the library itself so
 * most inputs pass validation and the patches decide what breaks. */
static void build_genuine(uint8_t *mem, size_t bytes, uint32_t slots, uint8_t opt)
{
	struct pvtimer_area *a = NULL;
	PVTIMER_AREA_OPTS(o, .slot_count = slots, .mem = mem, .mem_size = bytes,
			  .features = (opt & 1) ? PVTIMER_F_FIRED_TSC : 0,
			  .margin_tsc = (uint64_t)(opt >> 1 & 3) << 10,
			  .max_horizon_tsc = (opt & 8) ? 1ull << 20 : 0,
			  .tsc_khz = (opt & 16) ? 2600000 : 0,
			  .vector_min = (opt & 32) ? 0x40 : 0,
			  .vector_max = (opt & 64) ? 0xef : 0);

	MUST(pvtimer_area_new(&o, &a) == 0);
	pvtimer_area_destroy(a); /* caller-owned memory stays */
}

static void apply_patches(uint8_t *mem, size_t bytes, const uint8_t *p, size_t n)
{
	while (n >= 4) {
		size_t off = ((size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16) % bytes;
		size_t len = p[3] % 9;

		p += 4;
		n -= 4;
		if (len > n)
			len = n;
		if (len > bytes - off)
			len = bytes - off;
		memcpy(mem + off, p, len);
		p += len;
		n -= len;
	}
}

/* What the header says, read before the host touches anything. */
struct claims {
	uint64_t max_horizon;
	uint32_t slot_count;
	uint8_t *slots;
};

static void check_snapshot(const struct claims *c, uint32_t s, int err,
			   const struct pvtimer_slot_snapshot *snap,
			   uint64_t status_before, uint32_t gen_before)
{
	MUST(err == 0 || err == -EINVAL || err == -EAGAIN);
	if (err != 0 || !snap->armed)
		return;
	MUST(snap->vector >= PVTIMER_VECTOR_MIN);
	MUST(snap->deadline_tsc - NOW <= c->max_horizon ||
	     NOW - snap->deadline_tsc <= c->max_horizon || snap->past);
	/* fired before the snapshot: a restored host must not fire it again */
	MUST(!(PVTIMER_STATUS_CODE(status_before) == PVTIMER_STATUS_FIRED &&
	       PVTIMER_STATUS_GEN(status_before) == snap->gen &&
	       gen_before == snap->gen));
	(void)s;
}

static void host_calls(struct pvtimer_area *a, const struct claims *c)
{
	struct pvtimer_pending_iter it;
	struct pvtimer_slot_snapshot snap;
	uint32_t s, steps = 0, n = pvtimer_area_slot_count(a);

	MUST(n == c->slot_count);
	/* the status words and generations as restored, before any write */
	for (s = 0; s < n; s++) {
		struct pvtimer_abi_slot *sl =
			(struct pvtimer_abi_slot *)(c->slots + (size_t)s * PVTIMER_ABI_SLOT_STRIDE);
		uint64_t st = sl->status_word;
		uint32_t gen = sl->arm_gen;
		int err = pvtimer_host_read_slot(a, s, NOW, &snap);

		check_snapshot(c, s, err, &snap, st, gen);
	}
	MUST(pvtimer_host_activate(a, NOW + 1000, NOW) == 0);
	pvtimer_host_pending_begin(a, &it);
	while (pvtimer_host_pending_next(a, &it, &s)) {
		MUST(s < n);
		MUST(++steps <= n);
		if (pvtimer_host_read_slot(a, s, NOW + 10, &snap) == 0 && snap.armed)
			MUST(pvtimer_host_ack(a, s, snap.gen) == 0);
	}
	MUST(pvtimer_host_publish(a, NOW + 2000, NOW + 20) == 0);
	MUST(pvtimer_host_fired(a, 0, 1, NOW + 30) == 0);
	MUST(pvtimer_host_handback(a, n - 1, 2) == 0);
	MUST(pvtimer_host_requeue(a, n - 1) == 0);
	MUST(pvtimer_host_read_slot(a, n, NOW, &snap) == -ERANGE);
	MUST(pvtimer_host_deactivate(a) == 0);
}

/* The host's vector range as the header states it (1.1), if it states one
 * a host could honour. */
static int range_sane(const struct pvtimer_abi_header *h)
{
	return !(h->features & PVTIMER_F_VECTOR_RANGE) ||
	       (h->vector_min >= PVTIMER_VECTOR_MIN && h->vector_min <= h->vector_max);
}

/* Options ADOPT must refuse: the geometry and limits come from the area. */
static void bad_option(struct pvtimer_area_opts *o, uint8_t opt)
{
	switch (opt % 6) {
	case 1: o->slot_count = 1; break;
	case 2: o->vector_min = 0x40; break;
	case 3: o->vector_max = 0xef; break;
	case 4: o->margin_tsc = 1; break;
	case 5: o->features = PVTIMER_F_FIRED_TSC; break;
	}
}

/* The guest's view of the same bytes: the one shared geometry check. */
static void guest_agrees(uint8_t *mem, size_t claimed, int valid)
{
	struct pvtimer_guest g;
	int rc = pvtimer_guest_init(&g, mem, claimed, 0, 0xec);

	MUST(rc == 0 || rc == PVTIMER_GUEST_EINVAL || rc == PVTIMER_GUEST_ERANGE ||
	     rc == PVTIMER_GUEST_EPROTO);
	/* ERANGE is about the slot or the vector, not the area */
	MUST((rc == 0 || rc == PVTIMER_GUEST_ERANGE) == (valid == 0));
}

static void adopt(uint8_t *mem, size_t claimed, uint8_t opt)
{
	struct pvtimer_area *a = NULL;
	const struct pvtimer_abi_header *h = (const void *)mem;
	PVTIMER_AREA_OPTS(o, .mem = mem, .mem_size = claimed,
			  .flags = PVTIMER_AREA_ADOPT);
	int valid = pvtimer_area_validate(mem, claimed);
	struct claims c = {0};
	int err;

	MUST(valid == 0 || valid == -EINVAL || valid == -EPROTONOSUPPORT);
	guest_agrees(mem, claimed, valid);
	bad_option(&o, opt);
	err = pvtimer_area_new(&o, &a);
	if (opt % 6) {
		MUST(err == -EINVAL && !a);
		return;
	}
	/* one definition of a valid area: adopt accepts exactly what validate
	 * does, and that never includes a vector range no host could honour */
	MUST(err == -ENOMEM || (err == 0) == (valid == 0));
	MUST(valid != 0 || range_sane(h));
	MUST(err == 0 || err == valid || err == -EINVAL || err == -ENOMEM);
	if (err)
		return;
	MUST(pvtimer_area_mem(a) == mem);
	MUST(pvtimer_area_bytes(a) <= claimed);
	MUST(pvtimer_area_fd(a) == -ENOENT);
	/* validated, and adopt writes nothing: the header is what it checked */
	c.max_horizon = h->max_horizon_tsc;
	c.slot_count = h->slot_count;
	c.slots = mem + h->slots_offset;
	host_calls(a, &c);
	pvtimer_area_destroy(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t slots;
	size_t bytes, claimed;
	int32_t delta;
	uint8_t *full, *mem;

	if (size < 6)
		return 0;
	slots = 1 + ((uint32_t)data[0] | (uint32_t)data[1] << 8) % PVTIMER_ABI_MAX_SLOTS;
	bytes = pvtimer_area_size_for(slots);
	MUST(bytes >= PVTIMER_ABI_HEADER_SIZE);
	/* a claimed size a little off the real one, either way */
	delta = (int32_t)(int16_t)((uint16_t)data[3] | (uint16_t)data[4] << 8);
	claimed = delta < 0 && (size_t)-delta >= bytes ? 1 : bytes + (size_t)(int64_t)delta;
	full = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
	MUST(full);
	build_genuine(full, bytes, slots, data[2]);
	apply_patches(full, bytes, data + 6, size - 6);
	/* exactly the claimed bytes, so a read past them is an ASan report */
	MUST(posix_memalign((void **)&mem, 4096, claimed) == 0);
	memset(mem, 0, claimed);
	memcpy(mem, full, claimed < bytes ? claimed : bytes);
	free(full);
	adopt(mem, claimed, data[5]);
	free(mem);
	return 0;
}
