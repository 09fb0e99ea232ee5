/* SPDX-License-Identifier: MIT */
/* KVM binary statistics of one vCPU. The descriptors are read once at open
 * and the data offsets kept, so a sample is one pread per counter. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm.h"

int stats_open(struct stats *s, int vcpu_fd, const char *const *names,
	       uint32_t count)
{
	struct kvm_stats_header h;
	size_t dsz;
	char *d;
	int rc = 0;

	if (count > STATS_MAX)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (s->fd < 0)
		return -errno;
	if (pread(s->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		rc = -EIO;
		goto fail;
	}
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	d = calloc(h.num_desc, dsz);
	if (!d) {
		rc = -ENOMEM;
		goto fail;
	}
	if (pread(s->fd, d, dsz * h.num_desc, h.desc_offset) !=
	    (ssize_t)(dsz * h.num_desc)) {
		free(d);
		rc = -EIO;
		goto fail;
	}
	s->count = count;
	for (uint32_t j = 0; j < count; j++) {
		s->names[j] = names[j];
		s->offsets[j] = UINT64_MAX;
		for (uint32_t i = 0; i < h.num_desc; i++) {
			struct kvm_stats_desc *k = (void *)(d + i * dsz);

			/* name_size bounds the name; do not trust a NUL */
			if (strncmp(k->name, names[j], h.name_size) == 0) {
				s->offsets[j] = h.data_offset + k->offset;
				s->sizes[j] = k->size;
				break;
			}
		}
	}
	free(d);
	return 0;
fail:
	close(s->fd);
	s->fd = -1;
	return rc;
}

/* Absent counters read as UINT64_MAX. */
int stats_read(const struct stats *s, uint64_t *values)
{
	for (uint32_t j = 0; j < s->count; j++) {
		values[j] = UINT64_MAX;
		if (s->offsets[j] == UINT64_MAX)
			continue;
		if (pread(s->fd, &values[j], sizeof(values[j]),
			  (off_t)s->offsets[j]) != (ssize_t)sizeof(values[j]))
			return -EIO;
	}
	return 0;
}

int stats_read_array(const struct stats *s, uint32_t j, uint64_t *values,
		     uint32_t max)
{
	size_t bytes;

	if (j >= s->count || s->offsets[j] == UINT64_MAX)
		return -ENOENT;
	if (s->sizes[j] > max)
		return -ENOSPC;
	bytes = (size_t)s->sizes[j] * sizeof(*values);
	if (pread(s->fd, values, bytes, (off_t)s->offsets[j]) != (ssize_t)bytes)
		return -EIO;
	return (int)s->sizes[j];
}

void stats_close(struct stats *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}
