/* SPDX-License-Identifier: MIT */
/* idlepoll-sim: score poll policies on traces of idle durations. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <exitless/idlepoll.h>
#include <exitless/idlepoll_sim.h>

#define MAX_POLICIES 16
#define MAX_PARAMS 32

/* Pseudo-policies scored offline, not through the library state. */
#define PSEUDO_ORACLE (-100)
#define PSEUDO_BEST_FIXED (-101)

struct param {
	char policy[32]; /* empty: every policy that has the key */
	char key[64];
	uint64_t value;
};

struct config {
	uint64_t halt_cost;
	int json;
	int npolicies;
	int policies[MAX_POLICIES];
	int nparams;
	struct param params[MAX_PARAMS];
};

static void usage(FILE *f)
{
	fputs(
"usage: idlepoll-sim [--halt-cost NS] [--policy NAME[,NAME...]]\n"
"                    [--param [POLICY.]KEY=VAL]... [--json] TRACE...\n"
"\n"
"Score idle-poll policies on traces of idle durations (one duration in ns\n"
"per line, '#' comment lines) under the cost model: a period of length d\n"
"polled for w costs d if d <= w, else w + H. The optimum is min(d, H).\n"
"\n"
"  --halt-cost NS     H, the cost of a halt and its wake-up (default 20000)\n"
"  --policy LIST      comma-separated: fixed, haltpoll, kvm, smart, oracle,\n"
"                     best-fixed (default: all of them)\n"
"  --param P.KEY=VAL  set a policy parameter; without 'P.' it applies to\n"
"                     every selected policy that has KEY (see docs/idlepoll.md)\n"
"  --json             print one JSON object instead of a table\n"
"  --help             this text\n"
"\n"
"Columns: cost_ratio = sum(cost)/sum(optimum); poll_cpu = polled ns / idle\n"
"ns; halt_rate = halts / periods; lat_ns = mean added wake-up latency\n"
"(H per halted period).\n", f);
}

static const char *pseudo_name(int p)
{
	return p == PSEUDO_ORACLE ? "oracle" : "best-fixed";
}

static const char *policy_label(int p)
{
	return p > 0 ? idlepoll_policy_name((uint32_t)p) : pseudo_name(p);
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || *end ? -EINVAL : 0;
}

static int parse_policies(struct config *cfg, const char *list)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	cfg->npolicies = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int p = idlepoll_policy_from_name(tok);

		if (!strcmp(tok, "oracle"))
			p = PSEUDO_ORACLE;
		else if (!strcmp(tok, "best-fixed"))
			p = PSEUDO_BEST_FIXED;
		if (p == -ENOENT) {
			fprintf(stderr, "idlepoll-sim: unknown policy '%s'\n", tok);
			return -1;
		}
		if (cfg->npolicies == MAX_POLICIES)
			return -1;
		cfg->policies[cfg->npolicies++] = p;
	}
	return cfg->npolicies ? 0 : -1;
}

static int parse_param(struct config *cfg, const char *arg)
{
	struct param *p = &cfg->params[cfg->nparams];
	const char *eq = strchr(arg, '='), *dot;

	if (cfg->nparams == MAX_PARAMS || !eq || eq == arg)
		goto bad;
	dot = memchr(arg, '.', (size_t)(eq - arg));
	if (dot) {
		if ((size_t)(dot - arg) >= sizeof(p->policy))
			goto bad;
		snprintf(p->policy, sizeof(p->policy), "%.*s", (int)(dot - arg), arg);
		arg = dot + 1;
	}
	if ((size_t)(eq - arg) >= sizeof(p->key) || eq == arg)
		goto bad;
	snprintf(p->key, sizeof(p->key), "%.*s", (int)(eq - arg), arg);
	if (parse_u64(eq + 1, &p->value) < 0)
		goto bad;
	cfg->nparams++;
	return 0;
bad:
	fprintf(stderr, "idlepoll-sim: bad --param '%s' (want [POLICY.]KEY=VAL)\n", arg);
	return -1;
}

/* Does some selected policy (the named one, if any) know this key? */
static int param_known(const struct config *cfg, const struct param *p)
{
	const char *key;
	int i;
	unsigned int k;

	for (i = 0; i < cfg->npolicies; i++) {
		uint32_t pol = (uint32_t)cfg->policies[i];

		if (cfg->policies[i] <= 0 ||
		    (p->policy[0] && strcmp(p->policy, idlepoll_policy_name(pol))))
			continue;
		for (k = 0; (key = idlepoll_param_key(pol, k)); k++)
			if (!strcmp(key, p->key))
				return 1;
	}
	return 0;
}

static int make_state(struct config *cfg, int policy, struct idlepoll_cpu **out)
{
	IDLEPOLL_OPTS(opts, .policy = (uint32_t)policy,
		      .halt_cost_ns = cfg->halt_cost);
	const char *name = idlepoll_policy_name((uint32_t)policy);
	int i, err;

	err = idlepoll_new(&opts, out);
	if (err < 0)
		return err;
	for (i = 0; i < cfg->nparams; i++) {
		struct param *p = &cfg->params[i];

		if (p->policy[0] && strcmp(p->policy, name))
			continue;
		err = idlepoll_set_param(*out, p->key, p->value);
		if (err == -ENOENT && !p->policy[0])
			continue;
		if (err < 0) {
			fprintf(stderr, "idlepoll-sim: %s: parameter %s=%" PRIu64
				": %s\n", name, p->key, p->value, strerror(-err));
			idlepoll_destroy(*out);
			return err;
		}
	}
	return 0;
}

static int score_one(struct config *cfg, int policy,
		     const struct idlepoll_trace *t, struct idlepoll_score *s)
{
	struct idlepoll_cpu *c;
	int err;

	if (policy == PSEUDO_ORACLE)
		return idlepoll_sim_oracle(cfg->halt_cost, t->idle_ns, t->n, s);
	if (policy == PSEUDO_BEST_FIXED)
		return idlepoll_sim_best_fixed(cfg->halt_cost, t->idle_ns, t->n,
					       s, NULL);
	err = make_state(cfg, policy, &c);
	if (err < 0)
		return err;
	err = idlepoll_sim_run(c, t->idle_ns, t->n, s);
	idlepoll_destroy(c);
	return err;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Trace names come from the command line: escape them for JSON. */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static int run_trace(struct config *cfg, const char *path,
		     const struct idlepoll_trace *t, int first)
{
	int i, rc = 0;

	if (cfg->json) {
		printf("%s\n    {\"trace\": ", first ? "" : ",");
		json_string(base_name(path));
		printf(", \"events\": %zu, \"results\": [", t->n);
	}
	for (i = 0; i < cfg->npolicies && rc == 0; i++) {
		struct idlepoll_score s = { .sz = sizeof(s) };
		struct idlepoll_score_summary m;

		rc = score_one(cfg, cfg->policies[i], t, &s);
		if (rc < 0)
			break;
		idlepoll_score_summarize(&s, &m);
		if (cfg->json)
			printf("%s\n      {\"policy\": \"%s\", \"cost_ratio\": %.6f, "
			       "\"poll_cpu\": %.6f, \"halt_rate\": %.6f, "
			       "\"added_latency_ns\": %.1f}",
			       i ? "," : "", policy_label(cfg->policies[i]),
			       m.cost_ratio, m.poll_cpu, m.halt_rate,
			       m.added_latency_ns);
		else
			printf("%-20s %7zu  %-10s %10.4f %8.4f %9.4f %9.0f\n",
			       base_name(path), t->n, policy_label(cfg->policies[i]),
			       m.cost_ratio, m.poll_cpu, m.halt_rate,
			       m.added_latency_ns);
	}
	if (cfg->json)
		printf("\n    ]}");
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "halt-cost", required_argument, NULL, 'H' },
		{ "policy", required_argument, NULL, 'p' },
		{ "param", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config cfg = { .halt_cost = 20000 };
	struct idlepoll_trace **traces;
	int opt, i, rc = 0;

	parse_policies(&cfg, "fixed,haltpoll,kvm,smart,oracle,best-fixed");
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'H':
			if (parse_u64(optarg, &cfg.halt_cost) < 0 ||
			    !cfg.halt_cost || cfg.halt_cost > (1ull << 32)) {
				fprintf(stderr, "idlepoll-sim: bad --halt-cost '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'p':
			if (parse_policies(&cfg, optarg) < 0)
				return 2;
			break;
		case 'P':
			if (parse_param(&cfg, optarg) < 0)
				return 2;
			break;
		case 'j':
			cfg.json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (i = 0; i < cfg.nparams; i++)
		if (!param_known(&cfg, &cfg.params[i])) {
			fprintf(stderr, "idlepoll-sim: no selected policy has "
				"parameter '%s'\n", cfg.params[i].key);
			return 2;
		}
	/* Load every trace first: a bad file fails before any output. */
	traces = calloc((size_t)(argc - optind), sizeof(*traces));
	if (!traces)
		return 1;
	for (i = optind; i < argc; i++) {
		char err[512];

		if (idlepoll_trace_load(argv[i], &traces[i - optind], err,
					sizeof(err)) < 0) {
			fprintf(stderr, "idlepoll-sim: %s\n", err);
			while (--i >= optind)
				idlepoll_trace_free(traces[i - optind]);
			free(traces);
			return 1;
		}
	}
	if (cfg.json)
		printf("{\"halt_cost_ns\": %" PRIu64 ", \"traces\": [", cfg.halt_cost);
	else
		printf("%-20s %7s  %-10s %10s %8s %9s %9s\n", "trace", "events",
		       "policy", "cost_ratio", "poll_cpu", "halt_rate", "lat_ns");
	for (i = optind; i < argc && rc == 0; i++)
		rc = run_trace(&cfg, argv[i], traces[i - optind], i == optind);
	for (i = 0; i < argc - optind; i++)
		idlepoll_trace_free(traces[i]);
	free(traces);
	if (rc < 0)
		return 1;
	if (cfg.json)
		printf("\n]}\n");
	return 0;
}
