/* sampler/eos.h - an exactly-once consume-transform-produce loop on Kafka transactions
 *
 * One consumer in a group and one transactional producer.  Every message the
 * consumer hands over is processed inside an open transaction; every
 * commit.interval.ms the consumer's positions are sent to the transaction and
 * it is committed.  Abortable errors abort and rewind the consumer to the
 * committed offsets (ops->aborted() lets the transform drop its own state);
 * fatal errors (fenced, ...) end eos_run() with -1.  A revoked assignment
 * commits first; a lost one aborts.
 */
#ifndef TS_EOS_H
#define TS_EOS_H

#include <signal.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kclient.h"

struct eos;

struct eos_ops {
	/* One consumed message, inside an open transaction.  Produce what it
	 * yields with eos_produce().  Return 0, or -1 to end the loop (fatal). */
	int (*process)(void *ctx, struct eos *e, const rd_kafka_message_t *m);
	/* Partitions were assigned (before consuming them) / are about to go
	 * (after their transaction committed).  Return -1 from assigned when
	 * the transform cannot take them (fatal).  Both may be NULL. */
	int (*assigned)(void *ctx, struct eos *e, const rd_kafka_topic_partition_list_t *parts);
	void (*revoked)(void *ctx, struct eos *e, const rd_kafka_topic_partition_list_t *parts);
	/* The transaction is about to commit: last chance to produce into it.
	 * Return -1 to fail (fatal).  May be NULL. */
	int (*before_commit)(void *ctx, struct eos *e);
	/* The transaction committed / aborted (the consumer is rewound). */
	void (*committed)(void *ctx);
	void (*aborted)(void *ctx);
	/* Called every loop turn (about every 100 ms): may produce, in which
	 * case it calls eos_produce (the transaction opens as needed). */
	int (*tick)(void *ctx, struct eos *e);
};

struct eos_conf {
	const char *brokers;
	const char *group;
	const char *transactional_id;
	const char *input;             /* topic to consume */
	int commit_interval_ms;
	int max_txn_messages;          /* commit early past this many outputs */
	const struct kclient_user *kafka_props; /* the user's, for both clients */
	int nkafka_props;
	const char *name;              /* for messages: "select", "batch" */
};

struct eos_stats {
	uint64_t consumed, produced, committed, aborted;
	int64_t lag;                   /* sum over assigned partitions; -1 unknown */
	double commit_ms_last, commit_ms_max;
	int partitions;
};

/* Refuses a user property (conf->kafka_props) that librdkafka does not take
 * or that would change what exactly-once needs (core/kclient.h): -1 with
 * errstr naming the property, the value needed and why; else 0. */
int eos_check(const struct eos_conf *conf, char *errstr, size_t errstr_size);

/* Creates both clients and initialises transactions (fencing an earlier
 * producer with the same transactional.id).  NULL on failure with errstr. */
struct eos *eos_new(const struct eos_conf *conf, const struct eos_ops *ops, void *ctx,
                    char *errstr, size_t errstr_size);

/* Runs until *run becomes 0 (then commits, leaves the group and returns 0)
 * or a fatal error (returns -1, with the reason in eos_errstr()). */
int eos_run(struct eos *e, volatile sig_atomic_t *run);

/* Produces a message in the open transaction (opening it if needed);
 * waits for queue room.  partition RD_KAFKA_PARTITION_UA lets the key decide.
 * headers may be NULL; they are copied.  Returns 0 or -1 (fatal). */
int eos_produce(struct eos *e, const char *topic, int32_t partition,
                const void *key, size_t key_len, const void *value, size_t len,
                const rd_kafka_headers_t *headers);

/* Same, but takes ownership of value (malloc'd), avoiding a copy. */
int eos_produce_owned(struct eos *e, const char *topic, int32_t partition,
                      const void *key, size_t key_len, void *value, size_t len,
                      const rd_kafka_headers_t *headers);

void eos_get_stats(struct eos *e, struct eos_stats *st);
const char *eos_errstr(const struct eos *e);
/* The consumer, for the transform's own reads of metadata. */
rd_kafka_t *eos_consumer(struct eos *e);

/* Leaves the group and frees everything; accepts NULL. */
void eos_destroy(struct eos *e);

#endif
