/* core/errfmt.h - fill a caller's errstr buffer: the one way library functions say why they failed */
#ifndef TS_ERRFMT_H
#define TS_ERRFMT_H

#include <stddef.h>

/* Formats the message into errstr (size bytes; nothing when size is 0) and
 * returns -1, so that "return errfmt(errstr, size, ...);" fails a function. */
int errfmt(char *errstr, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
