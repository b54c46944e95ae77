/* sink/opik.h - insert dataset items into Opik through its REST API (libcurl)
 *
 * One handle holds one libcurl easy handle (so one kept-alive connection) and
 * is used by one thread at a time.  opik_new() calls curl_global_init(), which
 * is thread-safe from libcurl 7.84 on; with an older libcurl create handles
 * before starting threads.  Items are upserted with
 * PUT {base_url}/v1/private/datasets/items under ids derived from (dataset,
 * item id), so sending the same item again replaces it instead of adding a
 * second copy; docs/opik.md says what is sent and why.
 *
 * The API key is read once, at opik_new(), from the environment variable the
 * configuration names.  It is sent only in the `authorization` header, never
 * written into an error message (a server that echoes it gets it replaced by
 * "***"), and wiped from memory at opik_destroy().
 */
#ifndef TS_SINK_OPIK_H
#define TS_SINK_OPIK_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* The most items Opik accepts in one PUT (DatasetItemBatch: items 1..1000). */
#define OPIK_BATCH_MAX 1000

struct opik_conf {
	const char *base_url;    /* the API root, e.g. "http://localhost:5173/api" (self-hosted)
	                            or "https://www.comet.com/opik/api" (Opik Cloud); required */
	const char *workspace;   /* sent as Comet-Workspace; NULL or "": not sent */
	const char *api_key_env; /* name of the environment variable holding the API key;
	                            NULL or "": no authorization header (a local Opik) */
	const char *project;     /* project_name for the datasets (Opik 2 scopes datasets by
	                            project); NULL or "": the workspace level */
	int batch_items;         /* items per request, 1..OPIK_BATCH_MAX */
	int timeout_ms;          /* one request, connecting included (CURLOPT_TIMEOUT_MS) */
	int connect_timeout_ms;  /* connecting (CURLOPT_CONNECTTIMEOUT_MS); 0: min(timeout, 10 s) */
	int max_retries;         /* retries of one request after its first attempt; 0: none */
	size_t batch_bytes;      /* a request body grows to at most this many bytes (one
	                            item larger than this is still sent, alone) */
	int backoff_ms;          /* the first wait before a retry; doubled each time */
	int backoff_max_ms;      /* the longest wait the doubling reaches */
	int retry_after_max_ms;  /* a Retry-After asking for longer than this ends the call
	                            with a (retriable) error instead of blocking the caller */
	const volatile sig_atomic_t *run; /* optional: when *run becomes 0, waits between
	                            retries stop and the call fails as retriable */
};

/* What a handle did since opik_new(). */
struct opik_stats {
	uint64_t requests;  /* HTTP attempts, retries included */
	uint64_t retries;   /* attempts after a retriable failure */
	uint64_t batches;   /* item batches accepted */
	uint64_t items;     /* items accepted (an item sent twice counts twice) */
	uint64_t failures;  /* calls that returned -1 */
};

/* Fills c with the defaults: batch_items 100, timeout_ms 30000,
 * max_retries 5, batch_bytes 4 MiB, backoff_ms 250, backoff_max_ms 15000,
 * retry_after_max_ms 120000; strings NULL. */
void opik_conf_init(struct opik_conf *c);

/* Checks the configuration, reads the API key from the environment and sets
 * up the connection (nothing is sent yet).  Returns the handle, or NULL with
 * errstr ("opik.base_url: expected an http:// or https:// URL",
 * "environment variable 'OPIK_API_KEY' is not set or empty").  The handle
 * copies what it needs of c. */
struct opik *opik_new(const struct opik_conf *c, char *errstr, size_t errstr_size);

/* Upserts n items of one dataset.  items[i] (lens[i] bytes, no NUL needed) is
 * an item as the sampler writes it: {"type":"item","id":..,"dataset":..,
 * ..,"record":{..}}.  The dataset is created if it does not exist yet (once
 * per handle and dataset), then the items go in batches of batch_items (and
 * at most batch_bytes).  A failed request is retried on connection errors,
 * timeouts, HTTP 408, 429 and 5xx, after an exponential backoff with jitter
 * or the server's Retry-After (seconds or an HTTP date), whichever is later,
 * up to max_retries times.
 *
 * Returns 0 when every item was accepted.  Returns -1 with errstr when an
 * item is malformed (nothing is sent), when the server refuses a request
 * (401, 403, 4xx), or after the retries ran out; some batches may have been
 * accepted then, which is harmless since a second call replaces them.
 * opik_retriable() tells whether calling again later may succeed. */
int opik_insert(struct opik *o, const char *dataset, const char *const *items,
                const size_t *lens, int n, char *errstr, size_t errstr_size);

/* After opik_insert() returned -1: 1 when the failure was transient (network,
 * timeout, 408/429/5xx, interrupted), 0 when trying the same again fails
 * again (a malformed item, a refused key, a rejected request). */
int opik_retriable(const struct opik *o);

void opik_stats_get(const struct opik *o, struct opik_stats *st);

/* The Opik item id for item `id` (idlen bytes) of `dataset`: a UUID version 7
 * whose 48-bit time is start_ms (the record's start_time, in Unix
 * milliseconds; 0 when it has none) and whose other 74 bits come from a hash
 * of dataset and id (docs/opik.md gives the exact function).  Writes 36
 * characters and a NUL into out. */
void opik_item_uuid(const char *dataset, const char *id, size_t idlen, int64_t start_ms,
                    char out[37]);

/* Closes the connection and wipes the key; accepts NULL. */
void opik_destroy(struct opik *o);

#endif
