/* core/afile.h - files whole: read one into memory; replace one by writing PATH.tmp and renaming it */
#ifndef TS_AFILE_H
#define TS_AFILE_H

#include <stddef.h>
#include <stdio.h>

/* Ends the writing of tmp (open as f) that is to become path.  keep: f is
 * flushed, fsynced and closed, tmp renamed to path, and path's folder
 * fsynced, so that path is either what it was or all of the new file.  Not
 * keep, or a step of that failed: tmp is removed.  f is closed in every
 * case; tmp and path stay the caller's.  Returns 0 when path is the new
 * file, else -1, with errstr saying why when a step failed (untouched when
 * keep was 0). */
int afile_finish(FILE *f, const char *tmp, const char *path, int keep, char *errstr, size_t errstr_size);

/* The whole of the file at path, with a NUL after its *len bytes (len may
 * be NULL).  NULL with errno set (ENOENT when there is no such file, ENOMEM).
 * The caller frees. */
char *afile_read(const char *path, size_t *len);

#endif
