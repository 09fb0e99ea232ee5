/* SPDX-License-Identifier: MIT */
/* Trace files: one idle duration in ns per line, '#' comments. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitless/idlepoll_sim.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* 1: a duration in *v; 0: blank or comment; -1: malformed. */
static int parse_line(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0')
		return 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		uint64_t digit = (uint64_t)(*s - '0');

		if (x > (UINT64_MAX - digit) / 10)
			return -1;
		x = x * 10 + digit;
	}
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	if (*s)
		return -1;
	*v = x;
	return 1;
}

static int push(struct idlepoll_trace *t, size_t *cap, uint64_t v)
{
	uint64_t *p;

	if (t->n == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		p = realloc(t->idle_ns, *cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		t->idle_ns = p;
	}
	t->idle_ns[t->n++] = v;
	return 0;
}

int idlepoll_trace_load(const char *path,
			struct idlepoll_trace **out, char *err,
			size_t errlen)
{
	struct idlepoll_trace *t;
	char *line = NULL;
	size_t linecap = 0, cap = 0, lineno = 0;
	ssize_t len;
	FILE *f;
	int rc = 0;

	if (!path || !out)
		return -EINVAL;
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		fclose(f);
		return -ENOMEM;
	}
	while ((len = getline(&line, &linecap, f)) >= 0) {
		uint64_t v;
		int kind;

		lineno++;
		kind = (size_t)len == strlen(line) ? parse_line(line, &v) : -1;
		if (kind < 0) {
			line[strcspn(line, "\r\n")] = '\0';
			set_err(err, errlen,
				"%s:%zu: not an idle duration in ns: \"%.40s\"",
				path, lineno, line);
			rc = -EINVAL;
			break;
		}
		if (kind > 0 && (rc = push(t, &cap, v)) < 0)
			break;
	}
	if (!rc && ferror(f)) {
		rc = -EIO;
		set_err(err, errlen, "%s: read error", path);
	}
	if (!rc && t->n == 0) {
		rc = -EINVAL;
		set_err(err, errlen, "%s: no idle durations", path);
	}
	free(line);
	fclose(f);
	if (rc < 0) {
		idlepoll_trace_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void idlepoll_trace_free(struct idlepoll_trace *t)
{
	if (!t)
		return;
	free(t->idle_ns);
	free(t);
}
