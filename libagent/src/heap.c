/* SPDX-License-Identifier: MIT */
/* Binary min-heap of held deadlines. A hashed wheel was the alternative;
 * docs/agent.md gives the measurement that chose the heap: at 1024 slots
 * one update costs tens of ns, far below one slot read or one injection. */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

int agent_heap_reserve(struct agent_heap *h, uint32_t cap)
{
	struct agent_slot **v;

	if (cap <= h->cap)
		return 0;
	v = realloc(h->v, (size_t)cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

void agent_heap_free(struct agent_heap *h)
{
	free(h->v);
	*h = (struct agent_heap){0};
}

static void place(struct agent_heap *h, uint32_t i, struct agent_slot *s)
{
	h->v[i] = s;
	s->heap_idx = i;
}

static void sift_up(struct agent_heap *h, uint32_t i)
{
	struct agent_slot *s = h->v[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (h->v[p]->deadline_host <= s->deadline_host)
			break;
		place(h, i, h->v[p]);
		i = p;
	}
	place(h, i, s);
}

static void sift_down(struct agent_heap *h, uint32_t i)
{
	struct agent_slot *s = h->v[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n &&
		    h->v[c + 1]->deadline_host < h->v[c]->deadline_host)
			c++;
		if (s->deadline_host <= h->v[c]->deadline_host)
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, s);
}

/* Insert or re-key; the caller reserved room for every slot. */
void agent_heap_set(struct agent_heap *h, struct agent_slot *s, uint64_t key)
{
	uint32_t i = s->heap_idx;

	s->deadline_host = key;
	if (i == AGENT_HEAP_NONE) {
		i = h->n++;
		place(h, i, s);
	}
	sift_up(h, i);
	sift_down(h, s->heap_idx);
}

void agent_heap_remove(struct agent_heap *h, struct agent_slot *s)
{
	uint32_t i = s->heap_idx;
	struct agent_slot *last;

	if (i == AGENT_HEAP_NONE)
		return;
	s->heap_idx = AGENT_HEAP_NONE;
	last = h->v[--h->n];
	if (i == h->n)
		return;
	place(h, i, last);
	sift_up(h, i);
	sift_down(h, last->heap_idx);
}
