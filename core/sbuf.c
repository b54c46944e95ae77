/* core/sbuf.c - a growable byte buffer and JSON string writer */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void sbuf_put(struct sbuf *s, const void *p, size_t n)
{
	if (sbuf_reserve(s, n))
		return;
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
}

void sbuf_putc(struct sbuf *s, char c)
{
	if (sbuf_reserve(s, 1))
		return;
	s->buf[s->len++] = c;
	s->buf[s->len] = '\0';
}

void sbuf_puts(struct sbuf *s, const char *str)
{
	sbuf_put(s, str, strlen(str));
}

void sbuf_printf(struct sbuf *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || sbuf_reserve(s, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(s->buf + s->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
}

void sbuf_put_jstr(struct sbuf *s, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	/* worst case: every byte becomes \u00XX */
	if (sbuf_reserve(s, n * 6 + 2))
		return;
	char *o = s->buf + s->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c >= 0x20 && c != '"' && c != '\\') {
			*o++ = (char)c;
			continue;
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
	}
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
