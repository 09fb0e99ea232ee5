/* SPDX-License-Identifier: MIT */
/* --metrics FILE: the agent's counters of each run, in the Prometheus text
 * format (libagent formats, the VMM decides where the text goes: here a
 * file, as node_exporter's textfile collector reads them). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

int write_metrics(struct ctx *c, const char *path)
{
	int nrep = c->o.nhp ? c->o.nhp : 1, n, rc = -1;
	const struct pvagent_stats *st[HP_MODES_MAX];
	char lbuf[HP_MODES_MAX][64];
	const char *labels[HP_MODES_MAX];
	size_t k = 0;
	char *text = NULL;
	FILE *f;

	for (int rep = 0; rep < nrep; rep++) {
		char hb[32];

		if (!c->ran[rep][VMM_CFG_EXITLESS])
			continue;
		snprintf(lbuf[k], sizeof(lbuf[k]), "vmm=\"exitless-vmm\",run=\"%s\"",
			 c->o.nhp ? hp_name(&c->o.hp[rep], hb, sizeof(hb)) : "0");
		labels[k] = lbuf[k];
		st[k++] = &c->agent_rep[rep];
	}
	if (!k)
		return 0; /* no agent ran: nothing to report */
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "exitless-vmm: --metrics %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	n = pvagent_stats_format_prometheus(st, labels, k, NULL, 0);
	if (n > 0)
		text = malloc((size_t)n + 1);
	if (text &&
	    pvagent_stats_format_prometheus(st, labels, k, text, (size_t)n + 1) == n &&
	    fputs(text, f) != EOF)
		rc = 0;
	free(text);
	if (fclose(f) != 0)
		rc = -1;
	if (rc)
		fprintf(stderr, "exitless-vmm: --metrics %s: write failed\n", path);
	return rc;
}
