/* SPDX-License-Identifier: MIT */
/* Fuzz target: the host side of libpvtimer against arbitrary guest memory
 * and an arbitrary sequence of host operations. Invariants: no crash, no
 * out-of-bounds access (ASan), every accepted snapshot within the limits,
 * every pending pass bounded by the slot count.
 *
 * Input: byte 0-1 slot count, then the initial area bytes (as many as the
 * input holds), interleaved with an operation script (see run_ops). Built
 * as a libFuzzer target with -Dfuzzing=enabled (clang), and always as a
 * replay test over the committed corpus plus generated inputs. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exitless/pvtimer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HORIZON 1000000ull
#define MUST(cond)                                                          \
	do {                                                                \
		if (!(cond))                                                \
			__builtin_trap();                                   \
	} while (0)

static void check_slot(struct pvtimer_area *a, uint32_t s, uint64_t now)
{
	struct pvtimer_slot_snapshot snap;
	int err = pvtimer_host_read_slot(a, s, now, &snap);

	MUST(err == 0 || err == -EINVAL || err == -EAGAIN || err == -ERANGE);
	MUST(err != -ERANGE || s >= pvtimer_area_slot_count(a));
	if (err == 0 && snap.armed) {
		MUST(snap.vector >= PVTIMER_VECTOR_MIN);
		/* modular: at most the horizon ahead; any past is "past" */
		MUST((int64_t)(snap.deadline_tsc - now) <= (int64_t)HORIZON);
		MUST(snap.past == ((int64_t)(snap.deadline_tsc - now) <= 0));
	}
}

static void pass(struct pvtimer_area *a, uint64_t now)
{
	struct pvtimer_pending_iter it;
	uint32_t s, steps = 0, n = pvtimer_area_slot_count(a);

	pvtimer_host_pending_begin(a, &it);
	while (pvtimer_host_pending_next(a, &it, &s)) {
		MUST(s < n);
		MUST(++steps <= n);
		check_slot(a, s, now);
	}
}

/* The same pass with the batch calls (1.2): the mask holds only slots,
 * read_slots answers per slot like check_slot's read_slot, torn slots go
 * back with requeue_mask. */
static void batch_pass(struct pvtimer_area *a, uint64_t now)
{
	uint32_t n = pvtimer_area_slot_count(a), nw = (n + 63) / 64, k = 0;
	uint64_t mask[(300 + 63) / 64] = {0}, torn[(300 + 63) / 64] = {0};
	struct pvtimer_slot_snapshot snaps[300];
	uint32_t slots[300];
	int rcs[300], got = pvtimer_host_take_pending_mask(a, mask, nw);

	MUST(got >= 0 && (uint32_t)got <= n);
	for (uint32_t w = 0; w < nw; w++)
		for (uint64_t b = mask[w]; b; b &= b - 1)
			slots[k++] = w * 64 + (uint32_t)__builtin_ctzll(b);
	MUST(k == (uint32_t)got && (!k || slots[k - 1] < n));
	MUST(pvtimer_host_read_slots(a, slots, k, now, snaps, rcs) == 0);
	for (uint32_t i = 0; i < k; i++) {
		MUST(rcs[i] == 0 || rcs[i] == -EINVAL || rcs[i] == -EAGAIN);
		if (rcs[i] == -EAGAIN)
			torn[slots[i] / 64] |= 1ull << (slots[i] % 64);
		if (rcs[i] == 0 && snaps[i].armed)
			MUST((int64_t)(snaps[i].deadline_tsc - now) <= (int64_t)HORIZON);
	}
	MUST(pvtimer_host_requeue_mask(a, torn, nw) == 0);
}

static void run_ops(struct pvtimer_area *a, uint8_t *mem, size_t bytes,
		    const uint8_t *ops, size_t n)
{
	uint64_t now = 1u << 20;

	for (size_t i = 0; i + 3 < n; i += 4) {
		uint32_t arg = (uint32_t)ops[i + 1] | (uint32_t)ops[i + 2] << 8;

		now += ops[i + 3];
		switch (ops[i] % 9) {
		case 0: /* the top bit of the argument picks the batch calls */
			if (arg & 0x8000)
				batch_pass(a, now);
			else
				pass(a, now);
			break;
		case 1: check_slot(a, arg, now); break;
		case 2: pvtimer_host_publish(a, now + arg, now); break;
		case 3: pvtimer_host_activate(a, now + arg, now); break;
		case 4: pvtimer_host_deactivate(a); break;
		case 5: mem[arg % bytes] = ops[i + 3]; break; /* the guest writes */
		case 6: pvtimer_host_fired(a, arg, ops[i + 3], now); break;
		case 7: pvtimer_host_handback(a, arg, ops[i + 3]); break;
		case 8: pvtimer_host_requeue(a, arg); break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pvtimer_area *a = NULL;
	size_t bytes, copy;
	uint32_t slots;
	uint8_t *mem;

	if (size < 2)
		return 0;
	slots = 1 + ((uint32_t)data[0] | (uint32_t)data[1] << 8) % 300;
	bytes = pvtimer_area_size_for(slots);
	mem = aligned_alloc(4096, bytes);
	MUST(mem);
	{
		PVTIMER_AREA_OPTS(o, .slot_count = slots, .mem = mem,
				  .mem_size = bytes, .max_horizon_tsc = HORIZON);
		MUST(pvtimer_area_new(&o, &a) == 0);
	}
	data += 2;
	size -= 2;
	/* half the input overwrites guest memory, the rest is the script */
	copy = size / 2 < bytes ? size / 2 : bytes;
	memcpy(mem, data, copy);
	run_ops(a, mem, bytes, data + copy, size - copy);
	pass(a, 1u << 21);
	pvtimer_area_destroy(a);
	free(mem);
	return 0;
}
