/* SPDX-License-Identifier: MIT */
/* The guest's port writes, one vCPU thread at a time (c->lock): console
 * text, phase markers, done, and the record of a fatal guest exception. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>

#include "app.h"

static const char *const exc_names[22] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "",
	"#TS", "#NP", "#SS", "#GP", "#PF", "", "#MF", "#AC", "#MC", "#XM",
	"#VE", "#CP",
};

/* The vCPU's own record (the guest wrote it before the port write that
 * brought us here, and that vCPU is stopped in KVM_RUN's exit now). */
static void report_fatal(struct ctx *c, int idx)
{
	const struct vmm_fatal *f = &c->mb->fatal[idx];
	uint64_t v = f->vector;

	c->faulted[idx] = 1;
	if (!f->valid) {
		fprintf(stderr, "exitless-vmm: vCPU %d: guest exception, "
			"no record\n", idx);
		return;
	}
	fprintf(stderr,
		"exitless-vmm: vCPU %d: guest exception %" PRIu64 " (%s) in "
		"ring %" PRIu64 ": error code %#" PRIx64 ", rip %#" PRIx64
		", cs %#" PRIx64 ", rflags %#" PRIx64 ", rsp %#" PRIx64
		", ss %#" PRIx64 ", cr2 %#" PRIx64 "\n",
		idx, v, v < 22 ? exc_names[v] : "?", f->cs & 3, f->error,
		f->rip, f->cs, f->rflags, f->rsp, f->ss, f->cr2);
}

static void console_byte(struct ctx *c, char ch)
{
	if (ch != '\n' && c->line_len < sizeof(c->line) - 1) {
		c->line[c->line_len++] = ch;
		return;
	}
	c->line[c->line_len] = 0;
	fprintf(stderr, "%s\n", c->line);
	c->line_len = 0;
}

static int on_io_locked(struct ctx *c, int idx, uint16_t port,
			uint32_t value)
{
	switch (port) {
	case VMM_PORT_CONSOLE:
		console_byte(c, (char)value);
		return 0;
	case VMM_PORT_PHASE:
		return timer_phase(c, idx, value);
	case VMM_PORT_PP_PHASE:
		return pingpong_phase(c, idx, value);
	case VMM_PORT_DONE:
		c->guest_status[idx] = value;
		c->done[idx] = 1;
		return 1;
	case VMM_PORT_FATAL:
		/* stop here; vcpu_thread()/main() stop the other vCPUs */
		report_fatal(c, idx);
		return -EFAULT;
	default:
		fprintf(stderr, "exitless-vmm: write to unknown port %#x\n",
			port);
		return -EPROTO;
	}
}

int on_io(void *opaque, uint16_t port, uint32_t value)
{
	struct vcpu_ctx *vc = opaque;
	int rc;

	pthread_mutex_lock(&vc->c->lock);
	rc = on_io_locked(vc->c, vc->idx, port, value);
	pthread_mutex_unlock(&vc->c->lock);
	return rc;
}
