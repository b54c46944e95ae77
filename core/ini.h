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

/* Reads path, calling fn in order.  Returns 0, or -1 with errstr
 * ("'PATH' line N: REASON", "cannot open 'PATH': ..."). */
int ini_read(const char *path, ini_fn fn, void *ctx, char *errstr, size_t errstr_size);

#endif
