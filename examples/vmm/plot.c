/* SPDX-License-Identifier: MIT */
/* The latency distributions as a hand-written SVG: one panel per group
 * (per service time for pingpong, one for the timer workload), one
 * cumulative curve per configuration, x = latency on a log scale (1 us to
 * 10 ms), y = share of samples at or below it. No plotting package. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "app.h"

#define PW 420 /* panel */
#define PH 300
#define ML 50 /* margins inside a panel */
#define MB 40
#define MT 30
#define X_MIN_US 1.0
#define X_MAX_US 10000.0
#define STEPS 200 /* points per curve */

static const char *const colors[] = {
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
	"#e377c2", "#17becf",
};

static double xpos(double us)
{
	double f;

	if (us < X_MIN_US)
		us = X_MIN_US;
	if (us > X_MAX_US)
		us = X_MAX_US;
	f = log10(us / X_MIN_US) / log10(X_MAX_US / X_MIN_US);
	return ML + f * (PW - ML - 10);
}

static double ypos(double share)
{
	return MT + (1.0 - share) * (PH - MT - MB);
}

static void panel_begin(FILE *f, int k, const char *title)
{
	fprintf(f, "<g transform=\"translate(%d,0)\">\n", k * PW);
	fprintf(f, "<text x=\"%d\" y=\"18\" font-size=\"14\">%s</text>\n", ML,
		title);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
		"fill=\"none\" stroke=\"#888\"/>\n",
		ML, MT, PW - ML - 10, PH - MT - MB);
	for (double us = X_MIN_US; us <= X_MAX_US; us *= 10)
		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
			"stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%d\" "
			"font-size=\"10\" text-anchor=\"middle\">%g us</text>\n",
			xpos(us), MT, xpos(us), PH - MB, xpos(us), PH - MB + 14,
			us);
	for (int q = 0; q <= 4; q++)
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" "
			"text-anchor=\"end\">%d%%</text>\n",
			ML - 4, ypos(q / 4.0) + 3, q * 25);
}

static void curve(FILE *f, const int64_t *sorted, uint64_t n, int color,
		  int line, const char *label)
{
	const char *col = colors[color % 8];

	if (!n)
		return;
	fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
		"points=\"", col);
	for (int i = 0; i <= STEPS; i++) {
		uint64_t j = (uint64_t)((double)i / STEPS * (double)(n - 1));

		fprintf(f, "%.1f,%.1f ", xpos((double)sorted[j] / 1e3),
			ypos((double)(j + 1) / (double)n));
	}
	fprintf(f, "\"/>\n<text x=\"%d\" y=\"%d\" font-size=\"11\" "
		"fill=\"%s\">%s</text>\n",
		ML + 6, MT + 14 + 13 * line, col, label);
}

static FILE *svg_open(const char *path, int panels)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return NULL;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" font-family=\"sans-serif\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		panels * PW, PH);
	return f;
}

static int svg_close(FILE *f)
{
	fprintf(f, "</svg>\n");
	return fclose(f) ? -errno : 0;
}

int plot_pingpong(struct ctx *c, struct pp_result r[][VMM_PP_CFGS],
		  const char *path)
{
	FILE *f = svg_open(path, (int)c->o.nservices);

	if (!f)
		return -errno;
	for (uint32_t s = 0; s < c->o.nservices; s++) {
		char title[96];
		int line = 0;

		snprintf(title, sizeof(title),
			 "pingpong round trip, service %u us", c->o.services_us[s]);
		panel_begin(f, (int)s, title);
		for (uint32_t i = 0; i < VMM_PP_CFGS; i++)
			if (r[s][i].ran && !r[s][i].error && r[s][i].rounds)
				curve(f, r[s][i].sorted_ns, r[s][i].rounds, (int)i,
				      line++, pp_names[i]);
		fprintf(f, "</g>\n");
	}
	return svg_close(f);
}

int plot_timers(struct ctx *c, struct result r[][VMM_CFG_COUNT],
		int have[][VMM_CFG_COUNT], const char *path)
{
	static const char *const names[VMM_CFG_COUNT] = { "plain", "exitless" };
	FILE *f = svg_open(path, 1);
	int nrep = c->o.nhp ? c->o.nhp : 1, line = 0;

	if (!f)
		return -errno;
	panel_begin(f, 0, "timer lateness");
	for (int rep = 0; rep < nrep; rep++) {
		for (int i = 0; i < (int)VMM_CFG_COUNT; i++) {
			char label[64], hb[32];

			if (!have[rep][i])
				continue;
			if (c->o.nhp)
				snprintf(label, sizeof(label), "%s, halt-poll %s",
					 names[i], hp_name(&c->o.hp[rep], hb,
							   sizeof(hb)));
			else
				snprintf(label, sizeof(label), "%s", names[i]);
			curve(f, r[rep][i].sorted_ns, r[rep][i].n, line, line,
			      label);
			line++;
		}
	}
	fprintf(f, "</g>\n");
	return svg_close(f);
}
