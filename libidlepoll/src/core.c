/* SPDX-License-Identifier: MIT */
/* The freestanding dispatcher: state set-up, select/reflect, parameters. */
#include "internal.h"

static const struct ip_policy *const policies[IDLEPOLL_POLICY_MAX + 1] = {
	[IDLEPOLL_POLICY_FIXED] = &ip_policy_fixed,
	[IDLEPOLL_POLICY_HALTPOLL] = &ip_policy_haltpoll,
	[IDLEPOLL_POLICY_KVM] = &ip_policy_kvm,
	[IDLEPOLL_POLICY_SMART] = &ip_policy_smart,
};

static const struct ip_policy *policy_of(uint32_t policy)
{
	return policy <= IDLEPOLL_POLICY_MAX ? policies[policy] : NULL;
}

static int ip_streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

#define IP_OFFSETOFEND(field)                                               \
	(__builtin_offsetof(struct idlepoll_opts, field) +                  \
	 sizeof(((struct idlepoll_opts *)0)->field))
/* The end of the last field this version knows: the bytes from here to the
 * caller's sz belong to a newer version and must be zero. */
#define IP_OPTS_KNOWN_END IP_OFFSETOFEND(halt_cost_ns)
/* A field exists in the caller's struct when its sz covers it. */
#define IP_OPT_HAS(o, field) ((o)->sz >= IP_OFFSETOFEND(field))

/* Options from a caller built against another version: read a field only if
 * the caller's struct holds it (defaults for the rest), refuse non-zero
 * bytes we do not know. */
static int opts_read(const struct idlepoll_opts *o, uint32_t *policy,
		     uint64_t *halt_cost)
{
	const unsigned char *bytes = (const unsigned char *)o;
	size_t i;

	*policy = IDLEPOLL_POLICY_SMART;
	*halt_cost = IDLEPOLL_DEFAULT_HALT_COST_NS;
	if (!o)
		return 0;
	if (o->sz < sizeof(o->sz))
		return -IP_EINVAL;
	for (i = IP_OPTS_KNOWN_END; i < o->sz; i++)
		if (bytes[i])
			return -IP_EINVAL;
	if (IP_OPT_HAS(o, flags) && o->flags)
		return -IP_EINVAL;
	if (IP_OPT_HAS(o, policy) && o->policy)
		*policy = o->policy;
	if (IP_OPT_HAS(o, halt_cost_ns) && o->halt_cost_ns)
		*halt_cost = o->halt_cost_ns;
	return 0;
}

IDLEPOLL_API size_t idlepoll_cpu_size(void)
{
	return sizeof(struct idlepoll_cpu);
}

IDLEPOLL_API size_t idlepoll_cpu_align(void)
{
	return _Alignof(struct idlepoll_cpu);
}

IDLEPOLL_API int idlepoll_cpu_init(void *mem, size_t bytes,
				   const struct idlepoll_opts *opts,
				   struct idlepoll_cpu **out)
{
	const struct ip_policy *p;
	struct idlepoll_cpu *c = mem;
	uint64_t halt_cost;
	uint32_t policy;
	unsigned int i;
	int err;

	if (!mem || !out || bytes < sizeof(*c) ||
	    ((uintptr_t)mem & (_Alignof(struct idlepoll_cpu) - 1)))
		return -IP_EINVAL;
	err = opts_read(opts, &policy, &halt_cost);
	if (err < 0)
		return err;
	p = policy_of(policy);
	if (!p)
		return -IP_ENOENT;
	ip_zero(c, sizeof(*c));
	c->policy = policy;
	c->halt_cost_ns = halt_cost;
	c->limit_ns = IP_NO_LIMIT;
	for (i = 0; i < p->nparams; i++)
		*(uint64_t *)((char *)c + p->params[i].off) = p->params[i].def;
	if (p->reset)
		p->reset(c);
	c->magic = IP_MAGIC;
	*out = c;
	return 0;
}

/* The policy of an initialised state, or NULL for memory idlepoll_cpu_init()
 * never set up (zeroed, freed, scribbled on): its policy slot may be empty
 * or out of the table, and nothing may be called through it. init writes
 * the magic last, after it validated the policy. */
static const struct ip_policy *state_policy(const struct idlepoll_cpu *c)
{
	if (!c || c->magic != IP_MAGIC)
		return NULL;
	return policy_of(c->policy);
}

IDLEPOLL_API uint64_t idlepoll_select(struct idlepoll_cpu *c, uint64_t now_ns,
				      uint64_t next_timer_ns)
{
	const struct ip_policy *p = state_policy(c);

	if (!p)
		return 0; /* halt at once: burns nothing, decides nothing */
	c->limit_ns = IP_NO_LIMIT;
	if (next_timer_ns != IDLEPOLL_NO_TIMER)
		c->limit_ns = next_timer_ns > now_ns ? next_timer_ns - now_ns : 0;
	return p->select(c); /* bounded by limit_ns and recorded there */
}

IDLEPOLL_API void idlepoll_reflect(struct idlepoll_cpu *c, uint64_t idle_ns,
				   int polled)
{
	const struct ip_policy *p = state_policy(c);

	if (p)
		p->reflect(c, idle_ns, polled);
}

IDLEPOLL_API int idlepoll_work(struct idlepoll_cpu *c)
{
	const struct ip_policy *p = state_policy(c);

	if (!p)
		return -IP_EINVAL;
	return p->work ? p->work(c) : 0;
}

static const struct ip_param *param_find(const struct ip_policy *p,
					 const char *key)
{
	unsigned int i;

	for (i = 0; i < p->nparams; i++)
		if (ip_streq(p->params[i].key, key))
			return &p->params[i];
	return NULL;
}

/* H is common to every policy: the reference rules ignore it, but it is the
 * yardstick of the cost they are scored by. */
static const struct ip_param halt_cost_param =
	IP_PARAM("halt_cost_ns", halt_cost_ns, 1, 1ull << 32,
		 IDLEPOLL_DEFAULT_HALT_COST_NS);

IDLEPOLL_API int idlepoll_set_param(struct idlepoll_cpu *c, const char *key,
				    uint64_t value)
{
	const struct ip_policy *pol = state_policy(c);
	const struct ip_param *p;

	if (!pol || !key)
		return -IP_EINVAL;
	p = ip_streq(key, halt_cost_param.key) ? &halt_cost_param
					       : param_find(pol, key);
	if (!p)
		return -IP_ENOENT;
	if (value < p->min || value > p->max)
		return -IP_EINVAL;
	if (pol->param_changing)
		pol->param_changing(c);
	*(uint64_t *)((char *)c + p->off) = value;
	return 0;
}

IDLEPOLL_API int idlepoll_get_param(const struct idlepoll_cpu *c,
				    const char *key, uint64_t *value)
{
	const struct ip_policy *pol = state_policy(c);
	const struct ip_param *p;

	if (!pol || !key || !value)
		return -IP_EINVAL;
	p = ip_streq(key, halt_cost_param.key) ? &halt_cost_param
					       : param_find(pol, key);
	if (!p)
		return -IP_ENOENT;
	*value = *(const uint64_t *)((const char *)c + p->off);
	return 0;
}

IDLEPOLL_API const char *idlepoll_param_key(uint32_t policy, unsigned int i)
{
	const struct ip_policy *p = policy_of(policy);

	if (!p || i > p->nparams)
		return NULL;
	return i < p->nparams ? p->params[i].key : halt_cost_param.key;
}

IDLEPOLL_API const char *idlepoll_policy_name(uint32_t policy)
{
	const struct ip_policy *p = policy_of(policy);

	return p ? p->name : NULL;
}

IDLEPOLL_API int idlepoll_policy_from_name(const char *name)
{
	uint32_t i;

	for (i = 1; name && i <= IDLEPOLL_POLICY_MAX; i++)
		if (ip_streq(policies[i]->name, name))
			return (int)i;
	return -IP_ENOENT;
}

IDLEPOLL_API uint32_t idlepoll_cpu_policy(const struct idlepoll_cpu *c)
{
	return state_policy(c) ? c->policy : 0;
}

IDLEPOLL_API uint64_t idlepoll_cost(uint64_t idle_ns, uint64_t window_ns,
				    uint64_t halt_cost_ns)
{
	return ip_cost(idle_ns, window_ns, halt_cost_ns);
}
