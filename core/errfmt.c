/* core/errfmt.c - fill a caller's errstr buffer (see errfmt.h) */
#include "errfmt.h"

#include <stdarg.h>
#include <stdio.h>

int errfmt(char *errstr, size_t size, const char *fmt, ...)
{
	va_list ap;
	if (!errstr || !size)
		return -1;
	va_start(ap, fmt);
	vsnprintf(errstr, size, fmt, ap);
	va_end(ap);
	return -1;
}
