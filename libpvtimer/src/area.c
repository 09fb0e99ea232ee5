/* SPDX-License-Identifier: MIT */
/* Area creation, geometry and validation. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define ROUND_UP(x, a) (((x) + (a)-1) / (a) * (a))

struct geometry {
	uint32_t pending_offset;
	uint32_t pending_words;
	uint32_t slots_offset;
	uint32_t area_size;
};

static int geometry_for(uint32_t slot_count, struct geometry *g)
{
	uint32_t pending_bytes;

	if (slot_count == 0 || slot_count > PVTIMER_ABI_MAX_SLOTS)
		return -EINVAL;
	g->pending_offset = PVTIMER_ABI_HEADER_SIZE;
	g->pending_words = (slot_count + 63) / 64;
	pending_bytes = (uint32_t)offsetof(struct pvtimer_abi_pending, words) +
			ROUND_UP(g->pending_words * 8u, PVTIMER_ABI_CACHELINE);
	/* Slots start on a 128-byte boundary: adjacent-line prefetchers pull
	 * 128-byte pairs, so a slot never shares a pair with the bitmap. */
	g->slots_offset = ROUND_UP(g->pending_offset + pending_bytes,
				   PVTIMER_ABI_SLOT_STRIDE);
	g->area_size = ROUND_UP(g->slots_offset +
					slot_count * PVTIMER_ABI_SLOT_STRIDE,
				PVTIMER_ABI_PAGE_SIZE);
	return 0;
}

size_t pvtimer_area_size_for(uint32_t slot_count)
{
	struct geometry g = {0};

	if (geometry_for(slot_count, &g) < 0)
		return 0;
	return g.area_size;
}

int pvtimer_area_validate(const void *mem, size_t size)
{
	const struct pvtimer_abi_header *h = mem;
	struct geometry g = {0};

	if (!mem || size < PVTIMER_ABI_HEADER_SIZE ||
	    h->magic != PVTIMER_ABI_MAGIC)
		return -EINVAL;
	if (h->abi_major != PVTIMER_ABI_MAJOR)
		return -EPROTONOSUPPORT;
	/* The host only ever writes the geometry it would compute itself, so
	 * anything else means corruption, not a newer layout. */
	if (geometry_for(h->slot_count, &g) < 0 ||
	    h->header_size != PVTIMER_ABI_HEADER_SIZE ||
	    h->slot_stride != PVTIMER_ABI_SLOT_STRIDE ||
	    h->pending_offset != g.pending_offset ||
	    h->pending_words != g.pending_words ||
	    h->slots_offset != g.slots_offset || h->area_size != g.area_size ||
	    h->area_size > size)
		return -EINVAL;
	return 0;
}

static int opts_valid(const struct pvtimer_area_opts *o)
{
	const unsigned char *tail;
	size_t i;

	if (!o || o->sz < offsetof(struct pvtimer_area_opts, flags))
		return 0;
	tail = (const unsigned char *)o;
	for (i = sizeof(*o); i < o->sz; i++)
		if (tail[i])
			return 0;
	return 1;
}

/* Read an option only if the caller's struct is large enough to hold it. */
#define OPT(o, field, def)                                                  \
	((o)->sz >= offsetof(struct pvtimer_area_opts, field) +            \
				    sizeof((o)->field) && (o)->field       \
		 ? (o)->field                                               \
		 : (def))

static void init_header(struct pvtimer_area *a, const struct geometry *g,
			const struct pvtimer_area_opts *o)
{
	struct pvtimer_abi_header *h = a->hdr;

	memset(a->mem, 0, g->area_size);
	h->abi_major = PVTIMER_ABI_MAJOR;
	h->abi_minor = PVTIMER_ABI_MINOR;
	h->features = a->features;
	h->header_size = PVTIMER_ABI_HEADER_SIZE;
	h->slot_count = a->slot_count;
	h->slot_stride = PVTIMER_ABI_SLOT_STRIDE;
	h->slots_offset = g->slots_offset;
	h->pending_offset = g->pending_offset;
	h->pending_words = g->pending_words;
	h->area_size = g->area_size;
	h->tsc_khz = o->tsc_khz;
	h->margin_tsc = o->margin_tsc;
	h->max_horizon_tsc = a->max_horizon_tsc;
	h->next_sync_tsc = PVTIMER_SYNC_NEVER;
	for (uint32_t i = 0; i < a->slot_count; i++)
		pvtimer_slot_at(a, i)->next_sync_tsc = PVTIMER_SYNC_FOLLOW_AREA;
	/* Magic last: a guest that races area set-up sees no area yet. */
	__atomic_store_n(&h->magic, PVTIMER_ABI_MAGIC, __ATOMIC_RELEASE);
}

static int map_memfd(struct pvtimer_area *a, size_t bytes)
{
	void *mem;

	a->memfd = memfd_create("exitless-pvtimer",
				MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (a->memfd < 0)
		return -errno;
	if (ftruncate(a->memfd, (off_t)bytes) < 0)
		return -errno;
	/* A guest-memory mapping that could shrink would SIGBUS the agent. */
	if (fcntl(a->memfd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, a->memfd, 0);
	if (mem == MAP_FAILED)
		return -errno;
	a->mem = mem;
	return 0;
}

static void bind_pointers(struct pvtimer_area *a, const struct geometry *g)
{
	a->hdr = a->mem;
	a->pending = (struct pvtimer_abi_pending *)((char *)a->mem +
						    g->pending_offset);
	a->slots = (char *)a->mem + g->slots_offset;
	a->pending_words = g->pending_words;
	a->bytes = g->area_size;
}

static int adopt(struct pvtimer_area *a, const struct pvtimer_area_opts *o)
{
	const struct pvtimer_abi_header *h = o->mem;
	struct geometry g = {0};
	int err;

	if (!o->mem || o->slot_count || o->margin_tsc || o->max_horizon_tsc ||
	    o->features)
		return -EINVAL;
	err = pvtimer_area_validate(o->mem, o->mem_size);
	if (err < 0)
		return err;
	geometry_for(h->slot_count, &g);
	a->last_fired = calloc(h->slot_count, sizeof(*a->last_fired));
	if (!a->last_fired)
		return -ENOMEM;
	a->mem = o->mem;
	a->slot_count = h->slot_count;
	a->features = h->features & PVTIMER_F_ALL_1_0;
	a->max_horizon_tsc = h->max_horizon_tsc;
	bind_pointers(a, &g);
	/* A restored area remembers what the previous host fired: a deadline
	 * that expired and fired before the snapshot must not fire again. */
	for (uint32_t i = 0; i < a->slot_count; i++) {
		uint64_t w = pvtimer_slot_at(a, i)->status_word;

		if (PVTIMER_STATUS_CODE(w) == PVTIMER_STATUS_FIRED)
			a->last_fired[i] = PVTIMER_STATUS_GEN(w) | PVTIMER_FIRED_VALID;
	}
	return 0;
}

static int create(struct pvtimer_area *a, const struct pvtimer_area_opts *o)
{
	uint64_t hour = (uint64_t)o->tsc_khz * 1000u * 3600u;
	struct geometry g = {0};
	int err;

	if (geometry_for(o->slot_count, &g) < 0 ||
	    (o->features & ~PVTIMER_F_ALL_1_0))
		return -EINVAL;
	a->last_fired = calloc(o->slot_count, sizeof(*a->last_fired));
	if (!a->last_fired)
		return -ENOMEM;
	a->slot_count = o->slot_count;
	a->features = o->features;
	a->max_horizon_tsc = o->max_horizon_tsc ? o->max_horizon_tsc
				: hour        ? hour
					      : (1ull << 56);
	if (o->mem) {
		if (o->mem_size < g.area_size || ((uintptr_t)o->mem & 63))
			return -EINVAL;
		a->mem = o->mem;
	} else {
		err = map_memfd(a, g.area_size);
		if (err < 0)
			return err;
	}
	bind_pointers(a, &g);
	init_header(a, &g, o);
	return 0;
}

int pvtimer_area_new(const struct pvtimer_area_opts *opts,
		     struct pvtimer_area **out)
{
	struct pvtimer_area *a;
	uint32_t flags;
	int err;

	if (!out || !opts_valid(opts))
		return -EINVAL;
	flags = OPT(opts, flags, 0u);
	if (flags & ~PVTIMER_AREA_ADOPT)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->memfd = -1;
	a->stats.sz = sizeof(a->stats);
	a->vector_min = OPT(opts, vector_min, (uint8_t)PVTIMER_VECTOR_MIN);
	a->vector_max = OPT(opts, vector_max, (uint8_t)PVTIMER_VECTOR_MAX);
	err = a->vector_min < PVTIMER_VECTOR_MIN || a->vector_min > a->vector_max
		      ? -EINVAL
		      : 0;
	if (!err)
		err = (flags & PVTIMER_AREA_ADOPT) ? adopt(a, opts) : create(a, opts);
	if (err < 0) {
		pvtimer_area_destroy(a);
		return err;
	}
	*out = a;
	return 0;
}

void pvtimer_area_destroy(struct pvtimer_area *a)
{
	if (!a)
		return;
	if (a->memfd >= 0) {
		if (a->mem)
			munmap(a->mem, a->bytes);
		close(a->memfd);
	}
	free(a->last_fired);
	free(a);
}

int pvtimer_area_fd(const struct pvtimer_area *a)
{
	return a->memfd >= 0 ? a->memfd : -ENOENT;
}

void *pvtimer_area_mem(const struct pvtimer_area *a)
{
	return a->mem;
}

size_t pvtimer_area_bytes(const struct pvtimer_area *a)
{
	return a->bytes;
}

uint32_t pvtimer_area_slot_count(const struct pvtimer_area *a)
{
	return a->slot_count;
}

int pvtimer_area_get_stats(const struct pvtimer_area *a,
			   struct pvtimer_area_stats *stats)
{
	const uint64_t *src = &a->stats.slot_reads;
	uint64_t *dst;
	size_t n;

	if (!stats || stats->sz < offsetof(struct pvtimer_area_stats, slot_reads))
		return -EINVAL;
	n = (stats->sz < sizeof(*stats) ? stats->sz : sizeof(*stats)) -
	    offsetof(struct pvtimer_area_stats, slot_reads);
	dst = &stats->slot_reads;
	for (size_t i = 0; i < n / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	return 0;
}
