/* core/pymarshal.h - Python marshal data written as the JSON text Python's json module writes
 *
 * A Python program can hand a value to C as marshal.dumps(value, 4) several
 * times faster than as json.dumps(value): the library then writes the JSON
 * itself.  Only what JSON holds the same way is converted: None, bool, int,
 * finite float, str, list, tuple and dict (keys str, int, bool or None);
 * anything else (bytes, sets, NaN, subnormal floats, code, other keys,
 * nesting deeper than max_depth) is refused, and the caller encodes that
 * value as JSON itself.
 */
#ifndef TS_PYMARSHAL_H
#define TS_PYMARSHAL_H

#include <stddef.h>

#include "sbuf.h"

enum pym_result {
	PYM_OK = 0,
	PYM_REFUSED = -1,   /* not marshal data, or a value JSON does not hold as json writes it */
	PYM_TOO_DEEP = -2,  /* containers nest deeper than max_depth */
	PYM_TOO_LARGE = -3  /* the JSON would be longer than max_bytes */
};

/* Appends to out the JSON text of the value in data[0..len) (written by
 * marshal.dumps(value, 4), or 3; Python 3.4 and later): byte for byte what
 * json.dumps(value, ensure_ascii=False, separators=(",", ":")) writes, then
 * encoded as UTF-8 with lone surrogates as '?'.  max_bytes 0: no limit.
 * Returns PYM_OK, or a negative pym_result with out as it was (its length
 * restored).  Allocation failure shows in out->oom. */
int pymarshal_to_json(const void *data, size_t len, int max_depth, size_t max_bytes,
                      struct sbuf *out);

/* Writes the shortest decimal text that reads back as the finite double x,
 * as Python's repr(x) writes it ("0.1", "1e+16", "100.0", "-0.0"), at o
 * (at least 32 bytes); returns its length, or 0 for a subnormal (below
 * 2.2250738585072014e-308), which it does not write. */
size_t pymarshal_float_repr(double x, char *o);

#endif
