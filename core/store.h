/* core/store.h - the dataset store: append-only zstd JSONL segments and an atomic manifest
 *
 * A store is a directory (0700) holding datasets.  Each dataset is a folder of
 * segments: files of zstd frames whose decompressed text is JSONL, one item
 * per line, readable with `zstdcat seg | jq`.  One MANIFEST file for the
 * whole store is the commit point: it lists, per dataset, every segment and
 * how many of its bytes are committed, the item count, the batches, and the
 * Kafka offsets the data came from.  A commit appends frames to segments,
 * fsyncs them, then writes MANIFEST.tmp, fsyncs it, renames it over
 * MANIFEST and fsyncs the directory.  Bytes past the committed length (a
 * crash in the middle of a write) are a torn tail: readers never look past
 * the committed length and the writer truncates them on open.  Files are
 * 0600, folders 0700.  docs/store.md describes the format for readers that
 * are not tracesift.
 *
 * One writer at a time (an exclusive lock on DIR/LOCK); any number of
 * readers, each seeing the manifest as of when it opened it.
 */
#ifndef TS_STORE_H
#define TS_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_NAME_MAX 100  /* dataset names: [A-Za-z0-9._-]{1,100} */
#define STORE_ID_MAX   128  /* item ids: printable ASCII without '"' or '\\' */

enum batch_state {
	BATCH_OPEN = 0,     /* items seen, no trigger yet (or trigger seen, items missing) */
	BATCH_COMPLETE = 1, /* trigger seen and all its items stored */
	BATCH_EVALUATED = 2 /* marked by the evaluator (store_mark_evaluated) */
};

struct store_batch {
	int64_t batch;       /* number within the dataset, from 1 */
	int size;            /* items in the trigger (0 until the trigger is seen) */
	int have;            /* items stored that carry this batch number */
	int partial;         /* closed by max-wait */
	enum batch_state state;
	int64_t first_seq;   /* lowest item sequence number in the batch, -1 if none yet */
};

/* ---- writer (the sink) ------------------------------------------------- */

struct store_writer;

/* A limit <= 0 means no limit of that kind.  Rotation happens at a commit,
 * between zstd frames, so a segment can pass segment_bytes by one frame. */
struct store_limits {
	int64_t segment_items;   /* rotate after this many items (default 100000) */
	int64_t segment_bytes;   /* rotate after this many compressed bytes (default 64 MiB) */
	int segment_age_s;       /* rotate after this long open (default 3600) */
	int zstd_level;          /* default 3 */
};

void store_limits_default(struct store_limits *lim);

/* Opens (creating it 0700 if missing) the store at dir for writing: takes
 * the lock, reads MANIFEST, truncates torn tails, loads the id index.  NULL
 * on failure with errstr ("store '/x' is locked by another writer", ...).
 * lim NULL: the defaults.  The writer starts one thread of its own that
 * compresses staged items while the caller goes on (it blocks all signals);
 * the writer's functions are for one thread at a time. */
struct store_writer *store_writer_open(const char *dir, const struct store_limits *lim,
                                       char *errstr, size_t errstr_size);

/* The committed Kafka offset (the next to read) of topic/partition, or -1. */
int64_t store_offset(const struct store_writer *w, const char *topic, int32_t partition);

/* Stages one item (json: one JSON object, no newline) of dataset with id;
 * batch/position: -1 when the item has none (batch >= 0 otherwise; position
 * is not kept).  The JSON is stored as given, not validated (a raw newline
 * is refused).  Returns 1 staged, 0 a duplicate of a stored or staged id
 * (skipped), -1 error (bad name, id, batch, an empty item or one with a
 * newline, out of memory) with errstr; an error stages nothing. */
int store_add(struct store_writer *w, const char *dataset, const char *id,
              int64_t batch, int position, const char *json, size_t len,
              char *errstr, size_t errstr_size);

/* Stages a trigger: batch of dataset has these item ids (partial or not;
 * nids >= 1; the ids are checked, their count is the batch size).  The batch
 * is complete when as many items carrying its number are stored; until then
 * it stays open.  A second trigger of the same batch is ignored.  Returns 0,
 * or -1 with errstr (bad name, batch or id, out of memory). */
int store_add_trigger(struct store_writer *w, const char *dataset, int64_t batch,
                      int partial, const char *const *ids, int nids,
                      char *errstr, size_t errstr_size);

/* Stages the next offset to read for topic/partition (recorded with the data).
 * Ignores a negative partition or offset.  Out of memory makes the next
 * store_commit() fail. */
void store_set_offset(struct store_writer *w, const char *topic, int32_t partition, int64_t next);

/* Makes everything staged durable and visible (see above).  On failure
 * (ENOSPC, EIO, fsync error) nothing staged becomes visible, the staged
 * data stays staged, and the next commit retries from the last committed
 * state (never trusting a failed fsync): call it again until it returns 0.
 * One exception, invisible to the caller: when only the final fsync of the
 * folder fails, the new MANIFEST is in place (readers see it) but not known
 * durable; -1 is returned and the next commit writes and syncs it again.
 * Nothing staged: returns 0 without writing.  Returns 0 or -1 with errstr. */
int store_commit(struct store_writer *w, char *errstr, size_t errstr_size);

/* Items staged and not yet committed. */
int64_t store_staged(const struct store_writer *w);

/* Releases the lock and frees; what is staged and not committed is lost. */
void store_writer_close(struct store_writer *w);

/* Marks a batch evaluated: the evaluator's own append-only list per dataset
 * (DIR/datasets/NAME/evaluated, fsynced, under its own lock, never the
 * writer's, so the sink keeps running).  Idempotent.  Returns 0, or -1 with
 * errstr (also when the dataset has no folder: "no dataset 'x' in store
 * '/d'"). */
int store_mark_evaluated(const char *dir, const char *dataset, int64_t batch,
                         char *errstr, size_t errstr_size);

/* ---- reader (CLI, evaluator, replay) ----------------------------------- */

struct store_reader;

/* Opens the store read-only as of its current MANIFEST (and evaluated
 * lists); later commits are not seen.  NULL with errstr. */
struct store_reader *store_reader_open(const char *dir, char *errstr, size_t errstr_size);
void store_reader_close(struct store_reader *r);

/* Dataset names, sorted; valid until close. */
int store_datasets(struct store_reader *r, const char *const **names);
/* Items in dataset, or -1 if there is no such dataset. */
int64_t store_count(struct store_reader *r, const char *dataset);
/* Batches of dataset, in order of batch number; valid until close.  -1 if
 * there is no such dataset (or its batches file cannot be read). */
int store_batches(struct store_reader *r, const char *dataset, const struct store_batch **batches);

/* Iterates items: every item of dataset with sequence number >= from_seq
 * (0: all; a cursor saved from an earlier store_item_seq + 1 gives what was
 * added since), only those of batch when batch >= 0.  store_next returns 1
 * with *json and *len set to the item (NUL-terminated, valid until the next
 * call), 0 at the end, -1 on error (a segment that does not decode) with
 * errstr.  store_iter_new: NULL with errstr when there is no such dataset. */
struct store_iter;
struct store_iter *store_iter_new(struct store_reader *r, const char *dataset, int64_t from_seq,
                                  int64_t batch, char *errstr, size_t errstr_size);
int store_next(struct store_iter *it, const char **json, size_t *len, char *errstr, size_t errstr_size);
int64_t store_item_seq(const struct store_iter *it); /* of the item store_next returned */
void store_iter_free(struct store_iter *it);

#endif
