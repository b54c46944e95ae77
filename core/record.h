/* core/record.h - trace record v1: limits and the validator */
#ifndef TS_RECORD_H
#define TS_RECORD_H

#include <stddef.h>

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

/* What the validator learned of a valid record. */
struct rec_info {
	char trace_id[REC_TRACE_ID_LEN + 1];
	int  nspans;
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

#endif
