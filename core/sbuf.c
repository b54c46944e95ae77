/* core/sbuf.c - a growable byte buffer and JSON string writer */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

void sbuf_init(struct sbuf *s)
{
	memset(s, 0, sizeof(*s));
}

void sbuf_release(struct sbuf *s)
{
	free(s->buf);
	sbuf_init(s);
}

int sbuf_reserve(struct sbuf *s, size_t n)
{
	if (s->oom)
		return -1;
	if (s->len + n + 1 <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 256;
	while (cap < s->len + n + 1)
		cap *= 2;
	char *nb = realloc(s->buf, cap);
	if (!nb) {
		s->oom = 1;
		return -1;
	}
	s->buf = nb;
	s->cap = cap;
	return 0;
}

void sbuf_printf(struct sbuf *s, const char *fmt, ...)
{
	/* Format once into the spare room; only when it does not fit, grow and
	 * format again. */
	if (s->oom || (!s->buf && sbuf_reserve(s, 64)))
		return;
	va_list ap;
	size_t room = s->cap - s->len;
	va_start(ap, fmt);
	int n = vsnprintf(s->buf + s->len, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->buf[s->len] = '\0';
		return;
	}
	if ((size_t)n >= room) {
		if (sbuf_reserve(s, (size_t)n)) {
			s->buf[s->len] = '\0';
			return;
		}
		va_start(ap, fmt);
		vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	s->len += (size_t)n;
}

/* 1 for the bytes that a JSON string must escape: controls, '"' and '\\'. */
static const unsigned char must_escape[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20: '"' */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50: '\\' */
	/* the rest: 0 */
};

#if defined(__SSE2__)
/* How many of the 16 bytes at p need no escaping before the first that does. */
static int plain_prefix16(const char *p)
{
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
	const __m128i ctl_max = _mm_set1_epi8(0x1f);
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	/* unsigned v <= 0x1f: bytes >= 0x80 (UTF-8) need no escaping */
	__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
	                         _mm_cmpeq_epi8(_mm_min_epu8(v, ctl_max), v));
	int mask = _mm_movemask_epi8(m);
	return mask ? __builtin_ctz((unsigned)mask) : 16;
}
#endif

/* Writes byte c of a JSON string at o, escaped if it must be; returns the
 * end (at most 6 bytes on). */
static inline char *put_jbyte(char *o, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	if (!must_escape[c]) {
		*o++ = (char)c;
		return o;
	}
	*o++ = '\\';
	switch (c) {
	case '"':  *o++ = '"'; break;
	case '\\': *o++ = '\\'; break;
	case '\n': *o++ = 'n'; break;
	case '\r': *o++ = 'r'; break;
	case '\t': *o++ = 't'; break;
	case '\b': *o++ = 'b'; break;
	case '\f': *o++ = 'f'; break;
	default:
		*o++ = 'u'; *o++ = '0'; *o++ = '0';
		*o++ = hex[c >> 4]; *o++ = hex[c & 15];
	}
	return o;
}

void sbuf_put_jstr(struct sbuf *s, const char *str, size_t n)
{
	/* worst case: every byte becomes \u00XX */
	if (!sbuf_fits(s, n * 6 + 2) && sbuf_reserve(s, n * 6 + 2))
		return;
	char *o = s->buf + s->len;
	*o++ = '"';
	size_t i = 0;
#if defined(__SSE2__)
	/* Text is mostly plain bytes: copy 16 at a time, up to the first byte
	 * that needs escaping.  Storing all 16 is safe: with 16 bytes left to
	 * write, the room reserved above is at least 96. */
	while (n - i >= 16) {
		int k = plain_prefix16(str + i);
		_mm_storeu_si128((__m128i *)(void *)o, _mm_loadu_si128((const __m128i *)(const void *)(str + i)));
		o += k;
		i += (size_t)k;
		if (k < 16)
			o = put_jbyte(o, (unsigned char)str[i++]);
	}
#endif
	for (; i < n; i++)
		o = put_jbyte(o, (unsigned char)str[i]);
	*o++ = '"';
	s->len = (size_t)(o - s->buf);
	s->buf[s->len] = '\0';
}

char *sbuf_detach(struct sbuf *s, size_t *len)
{
	if (s->oom) {
		sbuf_release(s);
		return NULL;
	}
	if (!s->buf && sbuf_reserve(s, 0))
		return NULL;
	char *b = s->buf;
	if (len)
		*len = s->len;
	sbuf_init(s);
	return b;
}

char *sbuf_copy(const struct sbuf *s, size_t *len)
{
	if (s->oom)
		return NULL;
	char *c = malloc(s->len + 1);
	if (!c)
		return NULL;
	if (s->len)
		memcpy(c, s->buf, s->len);
	c[s->len] = '\0';
	if (len)
		*len = s->len;
	return c;
}
