/* producer/lib/internal.h - what the client and the trace builder share */
#ifndef TS_INTERNAL_H
#define TS_INTERNAL_H

#include <stddef.h>

#include "tracesift.h"

/* Hands a serialized record (buf, len; malloc'd) with key trace_id (32
 * chars) to the client's queue.  Takes ownership of buf whatever happens.
 * Returns TS_OK or the error; counts it either way. */
int client_enqueue_owned(ts_client_t *c, const char *trace_id, char *buf, size_t len);

/* The client's project name for new traces. */
const char *client_project(const ts_client_t *c);

/* The longest JSON a value given to the one-call functions may take
 * (max.field.bytes, or max.record.bytes when that is 0 or smaller). */
size_t client_max_field_bytes(const ts_client_t *c);

/* Fills out[n] (n bytes) with random lowercase hex characters, never all '0'. */
void ids_random_hex(char *out, size_t n);

/* Ends every open span of t now and returns its record (malloc'd, len set),
 * leaving t alive; NULL when out of memory.  ts_trace_end() is this, then
 * free and enqueue; tests call it to see the bytes. */
char *trace_render(ts_trace_t *t, size_t *len);

#endif
