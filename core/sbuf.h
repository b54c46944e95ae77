/* core/sbuf.h - a growable byte buffer and JSON string writer */
#ifndef TS_SBUF_H
#define TS_SBUF_H

#include <stddef.h>

/* A buffer that grows as it is written.  Embedded in other structs:
 * sbuf_init() / sbuf_release().  On allocation failure the buffer is
 * marked failed (sbuf.oom), later writes are ignored, and the caller checks
 * the flag once at the end. */
struct sbuf {
	char  *buf;
	size_t len;
	size_t cap;
	int    oom;
};

void sbuf_init(struct sbuf *s);
void sbuf_release(struct sbuf *s);
/* Makes room for n more bytes; returns 0, or -1 (and sets oom). */
int  sbuf_reserve(struct sbuf *s, size_t n);
void sbuf_put(struct sbuf *s, const void *p, size_t n);
void sbuf_putc(struct sbuf *s, char c);
void sbuf_puts(struct sbuf *s, const char *str);
void sbuf_printf(struct sbuf *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Writes str (n bytes, assumed valid UTF-8) as a quoted JSON string. */
void sbuf_put_jstr(struct sbuf *s, const char *str, size_t n);
/* Hands the bytes to the caller (NUL-terminated, caller frees) and resets s.
 * Returns NULL if the buffer failed. */
char *sbuf_detach(struct sbuf *s, size_t *len);

#endif
