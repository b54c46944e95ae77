/* sampler/sampler.h - what the sampler's selector, batcher and main share */
#ifndef TS_SAMPLER_H
#define TS_SAMPLER_H

#include <pthread.h>
#include <stdint.h>

#include "eos.h"
#include "record.h"
#include "redact.h"
#include "sconf.h"

/* Items start with this, then the 32-character id and '"': the batcher
 * splices the batch and position in right after. */
#define ITEM_PREFIX "{\"type\":\"item\",\"id\":\""
#define ITEM_PREFIX_LEN (sizeof(ITEM_PREFIX) - 1)
#define ITEM_SPLICE_AT (ITEM_PREFIX_LEN + REC_TRACE_ID_LEN + 1)
/* Largest item the sampler writes; larger ones are dead-lettered. */
#define ITEM_MAX_BYTES (4 * 1024 * 1024 - 65536)

struct class_counts {
	char *item_head;          /* the item's constant part after its id (select_prepare) */
	size_t item_head_len;
	uint64_t seen, selected, rate_limited;
	int64_t window_start_ms; /* rate limit window */
	int window_count;
};

struct sampler {
	const struct sampler_conf *conf;
	struct redactor *redactor;      /* NULL: no redaction rules */
	struct rec_limits limits;
	const struct kclient_user *kafka;  /* conf->kafka_props, with where each came from */
	int nkafka;

	pthread_mutex_t lock;           /* guards the counters below */
	struct class_counts *classes;   /* conf->nclasses */
	char *source_head;              /* ,"source":{"topic":"<input>","partition": */
	size_t source_head_len;
	uint64_t dead[REC_REASON_COUNT + 1]; /* the last: item too large */
	uint64_t redactions;
	uint64_t batches, partial_batches, batched_items;
};

/* The selector: llm.traces -> items (to pending, or to output without batches). */
extern const struct eos_ops select_ops;
/* Builds what every item of a class shares, once; 0 or -1 (out of memory).
 * select_release frees it. */
int select_prepare(struct sampler *s);
void select_release(struct sampler *s);

/* The batcher: pending -> items with batch and position, trigger records. */
struct batcher;
struct batcher *batcher_new(struct sampler *s, char *errstr, size_t errstr_size);
/* Refuses a user property (s->kafka) that would change what the state reader
 * needs: -1 with errstr, else 0. */
int batcher_check(const struct sampler *s, char *errstr, size_t errstr_size);
void batcher_destroy(struct batcher *b);
extern const struct eos_ops batch_ops;

#endif
