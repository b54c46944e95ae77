/* core/afile.c - files whole: read one, replace one (see afile.h) */
#include "afile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int afile_finish(FILE *f, const char *tmp, const char *path, int keep, char *errstr, size_t errstr_size)
{
	if (keep && (fflush(f) || ferror(f) || fsync(fileno(f)))) {
		snprintf(errstr, errstr_size, "write to '%s': %s", tmp, strerror(errno));
		keep = 0;
	}
	if (fclose(f) && keep) {
		snprintf(errstr, errstr_size, "write to '%s': %s", tmp, strerror(errno));
		keep = 0;
	}
	if (keep && rename(tmp, path)) {
		snprintf(errstr, errstr_size, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
		keep = 0;
	}
	if (!keep) {
		unlink(tmp);
		return -1;
	}
	/* the rename is durable once the folder is */
	char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
	if (dir) {
		const char *d = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
		int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
		free(dir);
	}
	return 0;
}

char *afile_read(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t n = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	while (buf) {
		if (n == cap) {
			char *nb = realloc(buf, 2 * cap + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				errno = ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			free(buf);
			buf = NULL;
			errno = e;
			break;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	int e = errno;
	close(fd);
	errno = e;
	if (!buf)
		return NULL;
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}
