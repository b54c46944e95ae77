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

/* The values of the settings a program took from its file, kept for the
 * life of its options (they point into them).  Embedded, zeroed to start;
 * kvfile_values_release() frees them. */
#define KVFILE_MAX_VALUES 256
struct kvfile_values {
	char *v[KVFILE_MAX_VALUES];
	int n;
};

/* One setting as the command-line option it stands for: kafka.PROP as "-X"
 * with the value "PROP=VALUE", brokers as "-b", topic as "-t", any other
 * NAME as "--NAME".  Writes the option into opt and returns its value: a
 * copy, kept in kept, that the caller may change in place.  NULL with
 * errstr "too many settings" or "out of memory". */
char *kvfile_option(struct kvfile_values *kept, const char *name, const char *value, char *opt,
                    size_t opt_size, char *errstr, size_t errstr_size);
/* Frees the kept values; kept is empty (and reusable) again. */
void kvfile_values_release(struct kvfile_values *kept);

#endif
