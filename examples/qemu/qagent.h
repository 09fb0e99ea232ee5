/* SPDX-License-Identifier: MIT */
/* exitless-qemu-agent: an ivshmem server that services pvtimer slots for a
 * stock QEMU (docs/linux-guest.md, docs/pvtimer-pci.md). */
#ifndef EXITLESS_QAGENT_H
#define EXITLESS_QAGENT_H

#include <stddef.h>
#include <stdint.h>

#include <exitless/agent.h>
#include <exitless/pvtimer.h>

/* ivshmem.c: QEMU's ivshmem server protocol (docs/specs/ivshmem-spec.rst). */

/** Listen on a UNIX stream socket at @p path (replacing a stale one).
 * @return the listening fd or -errno. */
int qa_ivshmem_listen(const char *path);

/** Accept one QEMU and hand it the shared memory and one eventfd per
 * vector: version 0, its peer id, -1 with @p shm_fd, then its own id once
 * per eventfd (eventfd i = MSI-X vector i). @return the connection or
 * -errno. */
int qa_ivshmem_accept(int listen_fd, int shm_fd, const int *efd,
		      uint32_t vectors);

/* calib.c: the host side of the TSC calibration handshake. */

/** Result of a calibration. */
struct qa_calib {
	int64_t offset;     /**< guest TSC - host TSC */
	uint64_t error_tsc; /**< half the best round trip */
	uint32_t samples;   /**< valid round trips seen */
	uint32_t rejected;  /**< messages that failed validation */
	uint32_t echoed;    /**< the last request answered: zero it once per
			     *   area, keep it across qa_calib_run() calls */
};

/** Offer the handshake in the area header (before QEMU sees the memory). */
void qa_calib_offer(void *area_mem);

/** Answer slot 0's requests until the guest's final one, or until
 * @p stop_fd becomes readable or @p timeout_ms passes. Publishes the
 * result and DONE in the header. Reads only the guest's request fields,
 * each once per request; geometry and the TSC rate (@p tsc_khz) are the
 * host's own.
 * @return 0, -EINTR (stop_fd), -ETIMEDOUT or -EPROTO (no valid sample). */
int qa_calib_run(const struct pvtimer_area *area, uint32_t tsc_khz,
		 int stop_fd, uint64_t timeout_ms, struct qa_calib *out);

/** Host TSC kHz, measured against CLOCK_MONOTONIC_RAW (about 20 ms). */
uint32_t qa_tsc_khz(void);

/* stats.c */

/** Print one line of stats (JSON with @p json, else text) for @p event. */
void qa_print_stats(struct pvagent *agent, struct pvtimer_area *area,
		    const struct qa_calib *calib, const char *event, int json);

#endif /* EXITLESS_QAGENT_H */
