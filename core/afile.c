/* core/afile.c - replace a file whole: write PATH.tmp.PID, then rename it over PATH */
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
