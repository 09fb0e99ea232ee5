/* SPDX-License-Identifier: MIT */
/* Host side of the TSC calibration handshake (docs/pvtimer-pci.md §4).
 * An agent outside the VMM cannot ask KVM for the guest's TSC offset, so
 * the guest tells it by round trips through the shared memory: the guest
 * writes t1 and request seq; we take our TSC h the moment we see it and
 * echo seq; the guest reads its TSC t2 when it sees the echo and sends it
 * with the next request. Then guest(h) lies in [t1, t2]: the offset is
 * (t1 + t2) / 2 - h within +-(t2 - t1) / 2, and the sample with the
 * shortest round trip wins. Guest memory is hostile: each field is loaded
 * once, and samples that are not ordered or too long are dropped. */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <time.h>

#include <exitless/pvtimer_abi.h>

#include <exitless/pvtimer_geometry.h>

#include "qagent.h"

/* A round trip longer than this (guest TSC) is no measurement: ~10 ms. */
#define QA_CALIB_MAX_RT_NS 10000000ull

static uint64_t mono_raw_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t qa_tsc_khz(void)
{
	uint64_t n0 = mono_raw_ns(), t0 = __builtin_ia32_rdtsc(), n1, t1;

	do
		n1 = mono_raw_ns();
	while (n1 - n0 < 20000000ull);
	t1 = __builtin_ia32_rdtsc();
	return (uint32_t)((t1 - t0) * 1000000ull / (n1 - n0));
}

void qa_calib_offer(void *area_mem)
{
	struct pvtimer_abi_header *h = area_mem;

	/* before QEMU has the memory: no guest can read line 0 yet */
	h->features |= PVTIMER_F_TSC_CALIBRATE;
	__atomic_store_n(&h->tsc_calib_state, PVTIMER_TSC_CALIB_WANTED,
			 __ATOMIC_RELEASE);
}

static int stop_requested(int stop_fd)
{
	struct pollfd p = { .fd = stop_fd, .events = POLLIN };

	return stop_fd >= 0 && poll(&p, 1, 0) > 0;
}

/* Slot 0 where this host put it: its own geometry, never the offset in the
 * (guest-writable) header. */
static struct pvtimer_abi_slot *slot0(const struct pvtimer_area *area)
{
	struct pvtimer_geometry g = { 0 };

	pvtimer_geometry_for(pvtimer_area_slot_count(area), &g);
	return (struct pvtimer_abi_slot *)((char *)pvtimer_area_mem(area) +
					   g.slots_offset);
}

int qa_calib_run(const struct pvtimer_area *area, uint32_t tsc_khz,
		 int stop_fd, uint64_t timeout_ms, struct qa_calib *out)
{
	struct pvtimer_abi_header *h = pvtimer_area_mem(area);
	struct pvtimer_abi_slot *s = slot0(area);
	uint64_t max_rt = QA_CALIB_MAX_RT_NS * tsc_khz / 1000000ull;
	uint64_t best_rt = UINT64_MAX, h_prev = 0, t1_prev = 0;
	uint64_t start = mono_raw_ns(), spins = 0;
	/* what we last answered (0 on a fresh area), kept in our memory
	 * across calls, not read back from the header, and not the slot's
	 * seq: a guest that published before we looked must get its echo */
	uint32_t echoed = out->echoed;

	*out = (struct qa_calib){ .echoed = echoed };
	for (;;) {
		uint32_t seq = __atomic_load_n(&s->tsc_calib_seq, __ATOMIC_ACQUIRE);
		uint64_t now = __builtin_ia32_rdtsc(), t1, t2, rt;

		if (seq == echoed) {
			if (++spins % 4096 == 0) {
				if (stop_requested(stop_fd))
					return -EINTR;
				if (mono_raw_ns() - start > timeout_ms * 1000000ull)
					return -ETIMEDOUT;
			}
			__builtin_ia32_pause();
			continue;
		}
		t1 = __atomic_load_n(&s->tsc_calib_t1, __ATOMIC_RELAXED);
		t2 = __atomic_load_n(&s->tsc_calib_t2, __ATOMIC_RELAXED);
		rt = t2 - t1_prev;
		/* sample of the previous request: only if this one follows it
		 * and the guest's two readings bracket our h in order */
		if (h_prev && (seq & ~PVTIMER_TSC_CALIB_LAST) == echoed + 1 &&
		    (int64_t)rt >= 0 && rt <= max_rt) {
			out->samples++;
			if (rt < best_rt) {
				best_rt = rt;
				out->offset = (int64_t)(t1_prev + rt / 2 - h_prev);
				out->error_tsc = (rt + 1) / 2;
			}
		} else if (h_prev) {
			out->rejected++;
		}
		if (seq & PVTIMER_TSC_CALIB_LAST)
			break;
		h_prev = now;
		t1_prev = t1;
		echoed = seq;
		out->echoed = seq;
		__atomic_store_n(&h->tsc_calib_host_tsc, now, __ATOMIC_RELAXED);
		__atomic_store_n(&h->tsc_calib_echo, seq, __ATOMIC_RELEASE);
	}
	if (!out->samples) {
		/* tell the guest the handshake is over either way */
		__atomic_store_n(&h->tsc_calib_state, PVTIMER_TSC_CALIB_DONE,
				 __ATOMIC_RELEASE);
		return -EPROTO;
	}
	h->tsc_calib_offset = (uint64_t)out->offset;
	h->tsc_calib_error_tsc = out->error_tsc;
	__atomic_store_n(&h->tsc_calib_state, PVTIMER_TSC_CALIB_DONE,
			 __ATOMIC_RELEASE);
	return 0;
}
