/* core/ini.h - read INI-style configuration files: [section NAME] headers and "key = value" lines
 *
 * The syntax (the sampler's and the evaluator's): blank lines are skipped;
 * '#' or ';' at the start of a line or after white space starts a comment,
 * outside quotes; "[kind]" or "[kind NAME]" opens a section; every other
 * line is "key = value" with the key one word.  A value may be quoted
 * ("...", where \" and \\ stand for " and \) to keep spaces, '#' or ';'.
 * A UTF-8 byte order mark on the first line is skipped.
 */
#ifndef TS_INI_H
#define TS_INI_H

#include <stddef.h>

struct ini_pos {
	const char *path;
	int line;
};

/* Called for each section header (key == NULL, value == NULL) and each
 * setting; kind and name are the current section's ("" when none, name ""
 * when the header has none).  Strings live only during the call.  Return 0,
 * or -1 with errstr saying why (ini_read prefixes "'PATH' line N: "). */
typedef int (*ini_fn)(void *ctx, const struct ini_pos *pos, const char *kind, const char *name,
                      const char *key, const char *value, char *errstr, size_t errstr_size);

/* The pieces, for readers with a syntax of their own on top (core/sconf.c). */

/* s without white space at either end (in place: the end is cut with a NUL). */
char *ini_trim(char *s);
/* Cuts a comment off a line: '#' or ';' at its start or after white space, outside quotes. */
void ini_strip_comment(char *s);
/* A quoted string at s ("...", with \" and \\ standing for " and \, any other
 * backslash kept): decodes it in place into s and returns the byte after the
 * closing quote, or NULL when there is none. */
char *ini_take_quoted(char *s);
/* A value as written, quoted or not: *out gets it (decoded in place).
 * Returns 0, or -1 with why ("no closing quote in ...", "text after the
 * closing quote"). */
int ini_unquote(char *v, char **out, char *why, size_t why_size);

/* Reads path, calling fn in order.  Returns 0, or -1 with errstr
 * ("'PATH' line N: REASON", "cannot open 'PATH': ..."). */
int ini_read(const char *path, ini_fn fn, void *ctx, char *errstr, size_t errstr_size);

#endif
