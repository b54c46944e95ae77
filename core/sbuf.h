/* core/sbuf.h - a growable byte buffer and JSON string writer */
#ifndef TS_SBUF_H
#define TS_SBUF_H

#include <stddef.h>
#include <string.h>

/* A buffer that grows as it is written.  Embedded in other structs:
 * sbuf_init() / sbuf_release().  On allocation failure the buffer is
 * marked failed (sbuf.oom), later writes are ignored, and the caller checks
 * the flag once at the end.  The bytes are always NUL-terminated (buf[len]),
 * once anything has been written. */
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
void sbuf_printf(struct sbuf *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Writes str (n bytes, assumed valid UTF-8) as a quoted JSON string. */
void sbuf_put_jstr(struct sbuf *s, const char *str, size_t n);
/* Hands the bytes to the caller (NUL-terminated, caller frees) and resets s.
 * Returns NULL if the buffer failed. */
char *sbuf_detach(struct sbuf *s, size_t *len);
/* A copy of the bytes in an allocation of exactly len + 1 (NUL-terminated,
 * caller frees); s is left as it is.  Returns NULL if the buffer failed or
 * when out of memory. */
char *sbuf_copy(const struct sbuf *s, size_t *len);

/* The writers below are inline because serializers call them for every few
 * bytes: when the bytes fit (and the buffer has not failed) a write is a
 * compare and a copy; everything else goes through sbuf_reserve(). */

/* 1 when n more bytes and the NUL fit without growing. */
static inline int sbuf_fits(const struct sbuf *s, size_t n)
{
	return !s->oom && n < s->cap - s->len;
}

static inline void sbuf_put(struct sbuf *s, const void *p, size_t n)
{
	if (!sbuf_fits(s, n) && sbuf_reserve(s, n))
		return;
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
}

static inline void sbuf_putc(struct sbuf *s, char c)
{
	if (!sbuf_fits(s, 1) && sbuf_reserve(s, 1))
		return;
	s->buf[s->len++] = c;
	s->buf[s->len] = '\0';
}

static inline void sbuf_puts(struct sbuf *s, const char *str)
{
	sbuf_put(s, str, strlen(str));
}

/* A string literal: its length is known when compiling. */
#define sbuf_put_lit(s, lit) sbuf_put((s), "" lit, sizeof(lit) - 1)

#endif
