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

/* Header fields loaded once each, relaxed: a guest may be writing the
 * header as we read it, and only this copy is used afterwards. */
static void copy_header(const struct pvtimer_abi_header *h,
			struct pvtimer_abi_header *c)
{
#define LD(f) (c->f = __atomic_load_n(&h->f, __ATOMIC_RELAXED))
	LD(magic);
	LD(abi_major);
	LD(abi_minor);
	LD(features);
	LD(header_size);
	LD(slot_count);
	LD(slot_stride);
	LD(slots_offset);
	LD(pending_offset);
	LD(pending_words);
	LD(area_size);
	LD(tsc_khz);
	LD(margin_tsc);
	LD(max_horizon_tsc);
	LD(vector_min);
	LD(vector_max);
#undef LD
}

static int validate_copy(const struct pvtimer_abi_header *c, size_t size,
			 struct pvtimer_geometry *g)
{
	int err = pvtimer_geometry_check(c, size, g);

	if (err == -71)
		return -EPROTONOSUPPORT;
	return err < 0 ? -EINVAL : 0;
}

size_t pvtimer_area_size_for(uint32_t slot_count)
{
	struct pvtimer_geometry g = {0};

	if (pvtimer_geometry_for(slot_count, &g) < 0)
		return 0;
	return g.area_size;
}

int pvtimer_area_validate(const void *mem, size_t size)
{
	struct pvtimer_abi_header c;
	struct pvtimer_geometry g;

	if (!mem || size < PVTIMER_ABI_HEADER_SIZE)
		return -EINVAL;
	copy_header(mem, &c);
	return validate_copy(&c, size, &g);
}

#define PVTIMER_OFFSETOFEND(type, field)                                    \
	(offsetof(type, field) + sizeof(((type *)0)->field))

/* The end of the last field this version knows. Bytes from here to the
 * caller's sz are padding or fields of a newer version: they must be zero
 * (checking from sizeof instead would leave the tail padding unchecked,
 * and a later field placed there would be read from an older caller's
 * garbage). */
#define OPTS_KNOWN_END PVTIMER_OFFSETOFEND(struct pvtimer_area_opts, vector_max)

static int opts_valid(const struct pvtimer_area_opts *o)
{
	const unsigned char *bytes;
	size_t i;

	if (!o || o->sz < offsetof(struct pvtimer_area_opts, flags))
		return 0;
	bytes = (const unsigned char *)o;
	for (i = OPTS_KNOWN_END; i < o->sz; i++)
		if (bytes[i])
			return 0;
	return 1;
}

/* Read an option only if the caller's struct is large enough to hold it. */
#define OPT(o, field, def)                                                  \
	((o)->sz >= PVTIMER_OFFSETOFEND(struct pvtimer_area_opts, field) &&  \
			 (o)->field                                         \
		 ? (o)->field                                               \
		 : (def))

static void init_header(struct pvtimer_area *a, const struct pvtimer_geometry *g,
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
	h->vector_min = a->vector_min;
	h->vector_max = a->vector_max;
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
	a->bytes = bytes;
	return 0;
}

static void bind_pointers(struct pvtimer_area *a, const struct pvtimer_geometry *g)
{
	a->hdr = a->mem;
	a->pending = (struct pvtimer_abi_pending *)((char *)a->mem +
						    g->pending_offset);
	a->slots = (char *)a->mem + g->slots_offset;
	a->pending_words = g->pending_words;
	a->bytes = g->area_size;
}

/* A restored area remembers what the previous host fired: a deadline that
 * fired before the snapshot must not fire again. The status word says which
 * generation fired; the guest line, if it still holds that generation,
 * gives its deadline, so "already fired" stays exact (§10). */
static void derive_fired(struct pvtimer_area *a)
{
	for (uint32_t i = 0; i < a->slot_count; i++) {
		struct pvtimer_abi_slot *s = pvtimer_slot_at(a, i);
		uint64_t w = __atomic_load_n(&s->status_word, __ATOMIC_ACQUIRE);
		struct pvtimer_guest_line line;

		a->host[i].status = w;
		if (PVTIMER_STATUS_CODE(w) != PVTIMER_STATUS_FIRED ||
		    pvtimer_read_guest_line(s, &line) < 0 ||
		    line.gen != PVTIMER_STATUS_GEN(w) ||
		    !(line.flags & PVTIMER_ARM_ARMED))
			continue;
		a->host[i].fired_gen = line.gen;
		a->host[i].fired_deadline = line.deadline;
		a->host[i].fired_valid = 1;
	}
}

/* The header is copied once; geometry, features and limits come from the
 * validated copy only, never from the guest-writable memory again. */
static int adopt(struct pvtimer_area *a, const struct pvtimer_area_opts *o)
{
	struct pvtimer_abi_header c;
	struct pvtimer_geometry g;
	int err;

	if (!o->mem || o->slot_count || o->margin_tsc || o->max_horizon_tsc ||
	    o->features || o->mem_size < PVTIMER_ABI_HEADER_SIZE ||
	    OPT(o, vector_min, 0) || OPT(o, vector_max, 0))
		return -EINVAL;
	copy_header(o->mem, &c);
	err = validate_copy(&c, o->mem_size, &g);
	if (err < 0)
		return err;
	/* the guest was told this range: keep honouring it */
	if (c.features & PVTIMER_F_VECTOR_RANGE) {
		if (c.vector_min < PVTIMER_VECTOR_MIN ||
		    c.vector_min > c.vector_max)
			return -EINVAL;
		a->vector_min = c.vector_min;
		a->vector_max = c.vector_max;
	}
	a->host = calloc(g.slot_count, sizeof(*a->host));
	if (!a->host)
		return -ENOMEM;
	a->mem = o->mem;
	a->slot_count = g.slot_count;
	a->features = c.features & PVTIMER_F_ALL_1_1;
	a->max_horizon_tsc = c.max_horizon_tsc < PVTIMER_HORIZON_MAX
				     ? c.max_horizon_tsc
				     : PVTIMER_HORIZON_MAX;
	bind_pointers(a, &g);
	derive_fired(a);
	return 0;
}

static int create(struct pvtimer_area *a, const struct pvtimer_area_opts *o)
{
	uint64_t hour = (uint64_t)o->tsc_khz * 1000u * 3600u;
	struct pvtimer_geometry g = {0};
	int err;

	if (pvtimer_geometry_for(o->slot_count, &g) < 0 ||
	    (o->features & ~PVTIMER_F_ALL_1_1) ||
	    o->max_horizon_tsc > PVTIMER_HORIZON_MAX ||
	    o->margin_tsc > PVTIMER_HORIZON_MAX)
		return -EINVAL;
	a->host = calloc(o->slot_count, sizeof(*a->host));
	if (!a->host)
		return -ENOMEM;
	a->slot_count = o->slot_count;
	/* 1.1 hosts always say which vectors they accept */
	a->features = o->features | PVTIMER_F_VECTOR_RANGE;
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
	free(a->host);
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
	/* a newer caller's counters this version does not have read 0 */
	if (stats->sz > sizeof(*stats))
		memset((char *)stats + sizeof(*stats), 0,
		       stats->sz - sizeof(*stats));
	return 0;
}
