/* SPDX-License-Identifier: MIT */
/* The guest payload: a flat binary linked at VMM_PAYLOAD_GPA with its
 * entry point first (guest/guest.ld). RAM is fresh anonymous memory, so
 * the payload's bss, which the flat file does not hold, is already zero. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm.h"

int loader_load(struct vmm *vmm, const char *path, uint64_t *entry)
{
	struct stat st;
	char *dst;
	size_t got = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (st.st_size <= 0 || (uint64_t)st.st_size > VMM_PAYLOAD_MAX) {
		rc = -EFBIG;
		goto out;
	}
	dst = mem_gpa(vmm, VMM_PAYLOAD_GPA, (size_t)st.st_size);
	if (!dst) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, dst + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			goto out;
		}
		got += (size_t)n;
	}
	*entry = VMM_PAYLOAD_GPA;
out:
	close(fd);
	return rc;
}
