/* core/record.h - trace record v1: limits and the validator */
#ifndef TS_RECORD_H
#define TS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define REC_VERSION            1
#define REC_MAX_BYTES_DEFAULT  (1024 * 1024)
#define REC_MAX_DEPTH_DEFAULT  64
#define REC_MAX_SPANS_DEFAULT  10000
#define REC_TRACE_ID_LEN       32
#define REC_SPAN_ID_LEN        16

struct rec_limits {
	size_t max_bytes;  /* whole record, in bytes */
	int    max_depth;  /* arrays/objects nesting, counting the record itself */
	int    max_spans;
};

/* Why a record was rejected; the names (rec_reason_name) go into dead-letter
 * headers and counters, so they never change. */
enum rec_reason {
	REC_OK = 0,
	REC_TOO_LARGE,   /* "too_large" */
	REC_NOT_JSON,    /* "not_json" */
	REC_BAD_UTF8,    /* "bad_utf8" */
	REC_TOO_DEEP,    /* "too_deep" */
	REC_NO_TRACE_ID, /* "no_trace_id": missing, or not 32 lowercase hex */
	REC_SCHEMA,      /* "schema": any other schema violation */
	REC_REASON_COUNT
};

/* A value's JSON text in the record: buf[off..off+len), exactly the value
 * (a string with its quotes, an object with its braces); len 0: absent. */
struct rec_slice {
	uint32_t off, len;
};

/* What the validator learned of a valid record.  The slices and figures are
 * those of the record's own (top-level) fields, never of its spans'. */
struct rec_info {
	char trace_id[REC_TRACE_ID_LEN + 1];
	int  nspans;
	struct rec_slice name, model, tags, metadata, error, input, output, usage, latency_ms;
	struct rec_slice context; /* output.context when output is an object holding
	                             it (the first, if the key repeats) */
	double  latency_total;    /* latency_ms.total; -1 when absent or null */
	double  ttft;             /* latency_ms.time_to_first_token; -1 when absent or null */
	int64_t total_tokens;     /* usage.total_tokens; -1 when absent */
	int64_t start_us, end_us; /* start_time, end_time: microseconds since the epoch */
	int     has_error;        /* error present and not null */
};

void rec_limits_default(struct rec_limits *lim);
const char *rec_reason_name(enum rec_reason r);

/* Validates buf[0..len) as trace record v1 (docs/trace-format.md) in one pass
 * (allocating only a table of span ids for records of more than 64 spans).
 * Returns REC_OK and fills *info (may be NULL), or the reason with errstr
 * naming the field and what is wrong (REC_SCHEMA still fills *info, so a
 * dead-letter copy can keep its key; other failures zero it), e.g.
 * "field 'spans[2].type': expected one of llm, retrieval, tool, general" or
 * "record is 5242880 bytes, over the limit of 1048576".  lim NULL: defaults. */
enum rec_reason rec_validate(const char *buf, size_t len, const struct rec_limits *lim,
                             struct rec_info *info, char *errstr, size_t errstr_size);

/* Questions about a record that rec_validate() accepted, answered from the
 * slices in *info without allocating; buf is the record validated.  Strings
 * compare after JSON escapes are decoded (value is UTF-8, NUL-terminated).
 * Each returns 1 or 0 (0 also when the field is absent or of another type). */

/* tags holds the string tag. */
int rec_has_tag(const char *buf, const struct rec_info *info, const char *tag);
/* metadata[key] (the first member named key) is the string value, or a
 * number, true or false whose JSON text is value ("3", "2.50", "true"). */
int rec_meta_equals(const char *buf, const struct rec_info *info, const char *key,
                    const char *value);
/* The slice is a JSON string equal to value. */
int rec_str_equals(const char *buf, struct rec_slice s, const char *value);

#endif
