/* core/redact.h - redaction of personal data and secrets in JSON text
 *
 * A redactor holds rules: built-in scanners (emails, phone numbers, API keys)
 * and POSIX extended regular expressions with replacement texts.  It rewrites
 * the string values of a JSON document (never object keys, numbers or
 * structure), so what it produces is JSON again.  See docs/redaction.md for
 * what each built-in matches and what redaction can miss.
 *
 * Set a redactor up from one thread (redact_new, redact_add_*); afterwards
 * redact_json() may be called on it from any number of threads at once: it
 * only reads the redactor.
 */
#ifndef TS_REDACT_H
#define TS_REDACT_H

#include <stddef.h>

#include "sbuf.h"

struct redactor;

/* A redactor with no rules (redact_json() then copies its input).  Returns
 * NULL when out of memory. */
struct redactor *redact_new(void);
/* Frees r and its compiled patterns; accepts NULL. */
void redact_destroy(struct redactor *r);

/* Turns on the built-in scanner name: "email", "phone" or "api_key".
 * replacement NULL: "[EMAIL]", "[PHONE]", "[API_KEY]" (the text is copied; it
 * must be valid UTF-8 and is JSON-escaped where it is written).  Adding a
 * built-in twice replaces its replacement.  Returns 0, or -1 with errstr, e.g.
 * "unknown built-in pattern 'ssn' (known: email, phone, api_key)". */
int redact_add_builtin(struct redactor *r, const char *name, const char *replacement,
                       char *errstr, size_t errstr_size);

/* Adds a POSIX extended regular expression (regcomp REG_EXTENDED, the C
 * library's locale) and the text that replaces each of its matches
 * (replacement NULL: ""; copied; must be valid UTF-8).  In the replacement,
 * \1 .. \9 stand for the pattern's groups, \0 for the whole match and \\
 * for one backslash; any other byte, other backslashes included, is literal.
 * Patterns run after the built-ins, in the order added, each on the text the
 * ones before left, on the decoded text of each string value.  A match that
 * cuts a UTF-8 character is widened to the whole character.  A pattern that
 * matches the empty string is refused.  Returns 0, or -1 with errstr:
 * "invalid pattern 'x': <regerror text>", "pattern 'x*' matches the empty
 * string", "replacement '\3': pattern 'x' has no group 3", "replacement for
 * pattern 'x' is not valid UTF-8". */
int redact_add_pattern(struct redactor *r, const char *ere, const char *replacement,
                       char *errstr, size_t errstr_size);

/* Rewrites the JSON text in[0..len) (which must be valid JSON: json_check()
 * or rec_validate() said so) into out, appending: every string value (not
 * object keys) has the rules' matches replaced; everything else is copied
 * byte for byte, and so are string values with no match.  A match never
 * spans a string boundary, and replacements are JSON-escaped, so out holds
 * valid JSON.  Returns the number of replacements made (0: out received
 * exactly in), or -1 when memory ran out (or the C library's regexec()
 * failed): out->oom is then set and what was appended is unusable.  Input
 * that is not JSON is never read past in + len, but what comes out of it is
 * unspecified. */
long redact_json(const struct redactor *r, const char *in, size_t len, struct sbuf *out);

#endif
