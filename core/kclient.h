/* core/kclient.h - Kafka client set-up: the program's defaults, then the user's properties, then what it depends on
 *
 * Every Kafka client of a tracesift program is configured in three layers,
 * applied in this order:
 *
 *   1. tunable defaults: the program's choice, which the user may change;
 *   2. the user's properties: kafka.PROP lines of a config file, then -X
 *      flags (a later one wins over an earlier one of the same name);
 *   3. required properties: what the program's guarantees depend on, set
 *      last, so that nothing can turn them off.
 *
 * A program calls kclient_check() for each of its clients before it starts
 * anything: it refuses a user property librdkafka does not take, and one that
 * would change a required property, also through an alias such as
 * request.required.acks for acks.  Giving the required value itself is
 * accepted.  kclient_conf_new() then builds each client's configuration.
 */
#ifndef TS_KCLIENT_H
#define TS_KCLIENT_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* One librdkafka property and, for a required one, what depends on it. */
struct kclient_prop {
	const char *name, *value;
	const char *why;    /* required: said when a user property would change it; NULL for tunables */
};

/* One client's properties.  The strings are the caller's and must outlive
 * the calls that take the tables. */
struct kclient_tables {
	const char *client;                /* for messages: "the sink's consumer" */
	const struct kclient_prop *tune;   /* tunable defaults */
	int ntune;
	const struct kclient_prop *must;   /* required, set last */
	int nmust;
};

/* One property the user gave, and where, for messages. */
struct kclient_user {
	const char *name, *value;
	const char *file;   /* a "kafka.NAME = VALUE" line of this config file; NULL: a flag */
	const char *flag;   /* the flag when file is NULL, as it precedes NAME=VALUE: "-s kafka."; NULL: "-X " */
};

/* Checks the user's properties (in the order they are applied) against one
 * client's tables.  Only the last of several properties of one name counts.
 * Each must be a property librdkafka knows, with a value it takes, and must
 * leave every required property at its value.  Returns 0, or -1 with errstr
 * naming where the property came from and, for a required one, the value
 * needed and why:
 *   "-X acks=1: the sink's dead-letter producer needs acks=all (WHY); it cannot be changed"
 *   "'FILE': kafka.no.such = 1: No such configuration property: ..." */
int kclient_check(const struct kclient_tables *t, const struct kclient_user *user, int nuser,
                  char *errstr, size_t errstr_size);

/* A new configuration: bootstrap.servers = brokers (unless brokers is NULL),
 * the tunables, the user's properties in order, the required properties.
 * The caller owns the result (rd_kafka_conf_destroy(), or kclient_new()).
 * Returns NULL with errstr when librdkafka refuses a property. */
rd_kafka_conf_t *kclient_conf_new(const struct kclient_tables *t, const char *brokers,
                                  const struct kclient_user *user, int nuser,
                                  char *errstr, size_t errstr_size);

/* rd_kafka_new() that always takes conf: the client owns it, and on failure
 * (NULL, with errstr) it is destroyed. */
rd_kafka_t *kclient_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);

#endif
