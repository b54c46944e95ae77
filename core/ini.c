/* core/ini.c - read INI-style configuration files (see ini.h) */
#include "ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *ini_trim(char *s)
{
	size_t n;
	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

void ini_strip_comment(char *s)
{
	int q = 0;
	for (char *p = s; *p; p++) {
		if (q) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				q = 0;
		} else if (*p == '"') {
			q = 1;
		} else if ((*p == '#' || *p == ';') && (p == s || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

char *ini_take_quoted(char *s)
{
	char *o = s;
	for (char *p = s + 1; *p; p++) {
		if (*p == '"') {
			*o = '\0';
			return p + 1;
		}
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		*o++ = *p;
	}
	return NULL;
}

int ini_unquote(char *v, char **out, char *why, size_t size)
{
	char *rest;
	*out = v;
	if (*v != '"')
		return 0;
	if (!(rest = ini_take_quoted(v))) {
		snprintf(why, size, "no closing quote in '%s'", v);
		return -1;
	}
	if (*ini_trim(rest)) {
		snprintf(why, size, "text after the closing quote");
		return -1;
	}
	return 0;
}

struct reader {
	struct ini_pos pos;
	char kind[64];
	char name[128];
	char *errstr;
	size_t errstr_size;
};

static int lfail(struct reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lfail(struct reader *rd, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(rd->errstr, rd->errstr_size, "'%s' line %d: ", rd->pos.path, rd->pos.line);
	if (n >= 0 && (size_t)n < rd->errstr_size) {
		va_start(ap, fmt);
		vsnprintf(rd->errstr + n, rd->errstr_size - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Runs fn, and prefixes its error with the place. */
static int call(struct reader *rd, ini_fn fn, void *ctx, const char *key, const char *value)
{
	char why[768];
	why[0] = '\0';
	if (fn(ctx, &rd->pos, rd->kind, rd->name, key, value, why, sizeof(why)))
		return lfail(rd, "%s", why[0] ? why : "invalid");
	return 0;
}

static int header(struct reader *rd, ini_fn fn, void *ctx, char *s)
{
	char *end = strchr(s, ']'), *kind, *name;
	if (!end)
		return lfail(rd, "no ']' in section header '%s'", s);
	if (*ini_trim(end + 1))
		return lfail(rd, "text after section header '%.*s'", (int)(end + 1 - s), s);
	*end = '\0';
	kind = ini_trim(s + 1);
	name = kind + strcspn(kind, " \t");
	if (*name)
		*name++ = '\0';
	name = ini_trim(name);
	if (!*kind)
		return lfail(rd, "empty section header");
	if (strlen(kind) >= sizeof(rd->kind) || strlen(name) >= sizeof(rd->name))
		return lfail(rd, "section header too long");
	if (strcspn(name, " \t") != strlen(name))
		return lfail(rd, "section name '%s' has a space in it", name);
	strcpy(rd->kind, kind);
	strcpy(rd->name, name);
	return call(rd, fn, ctx, NULL, NULL);
}

static int line(struct reader *rd, ini_fn fn, void *ctx, char *s)
{
	char *eq, *key;
	ini_strip_comment(s);
	s = ini_trim(s);
	if (!*s)
		return 0;
	if (*s == '[')
		return header(rd, fn, ctx, s);
	if (!(eq = strchr(s, '=')))
		return lfail(rd, "missing '=' in '%s' (expected 'NAME = VALUE')", s);
	*eq = '\0';
	key = ini_trim(s);
	if (!*key)
		return lfail(rd, "missing name before '='");
	if (strcspn(key, " \t") != strlen(key))
		return lfail(rd, "invalid name '%s'", key);
	char why[256], *value;
	if (ini_unquote(ini_trim(eq + 1), &value, why, sizeof(why)))
		return lfail(rd, "'%s': %s", key, why);
	return call(rd, fn, ctx, key, value);
}

int ini_read(const char *path, ini_fn fn, void *ctx, char *errstr, size_t errstr_size)
{
	struct reader rd;
	char dummy[1], *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	FILE *f;

	if (!errstr || !errstr_size) {
		errstr = dummy;
		errstr_size = sizeof(dummy);
	}
	errstr[0] = '\0';
	if (!(f = fopen(path, "r"))) {
		snprintf(errstr, errstr_size, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	memset(&rd, 0, sizeof(rd));
	rd.pos.path = path;
	rd.errstr = errstr;
	rd.errstr_size = errstr_size;
	while (!rc && (n = getline(&buf, &cap, f)) >= 0) {
		char *s = buf;
		rd.pos.line++;
		if (rd.pos.line == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
			s += 3;
		if (strlen(buf) != (size_t)n)
			rc = lfail(&rd, "holds a NUL byte");
		else
			rc = line(&rd, fn, ctx, s);
	}
	if (!rc && ferror(f)) {
		snprintf(errstr, errstr_size, "cannot read '%s': %s", path, strerror(errno));
		rc = -1;
	}
	free(buf);
	fclose(f);
	return rc;
}
