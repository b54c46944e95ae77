/* core/kvfile.h - read "name = value" configuration files */
#ifndef TS_KVFILE_H
#define TS_KVFILE_H

#include <stddef.h>

/* Called for each setting; name and value are trimmed and NUL-terminated and
 * live only during the call.  Return 0, or -1 with errstr saying why. */
typedef int (*kvfile_set_fn)(void *ctx, const char *name, const char *value,
                             char *errstr, size_t errstr_size);

/* Reads path: blank lines and lines starting with '#' are skipped, every
 * other line is "name = value".  Returns 0, or -1 with errstr
 * "'PATH' line N: REASON" (or "cannot open config file 'PATH': ..."). */
int kvfile_read(const char *path, kvfile_set_fn set, void *ctx, char *errstr, size_t errstr_size);

#endif
