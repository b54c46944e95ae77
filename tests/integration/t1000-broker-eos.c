/* tests/integration/t1000-broker-eos.c - idempotence and transactions work with this broker
 *
 * tracesift's delivery promises rest on librdkafka's idempotent producer (PID acquired,
 * acks=all) and on Kafka transactions read with isolation.level=read_committed. This
 * test proves that the broker at TS_BROKERS (default 127.0.0.1:9092) and the librdkafka
 * we link agree on both; see docs/kafka.md for why that is not a given (librdkafka 2.0.2
 * against Apache Kafka 4.x).
 *
 *   1. create a fresh one-partition topic (Admin API)
 *   2. produce with enable.idempotence=true: every message persisted, no fatal error,
 *      and librdkafka reports (debug=eos) that it acquired a producer id
 *   3. a transaction that commits one message, then one that aborts another (flushed
 *      first, so it really is in the log)
 *   4. read_committed sees the committed message, not the aborted one;
 *      read_uncommitted sees both (so the aborted one was there to be filtered)
 *
 * Prints 'ok - NAME' or 'not ok - NAME: REASON' per check, '# ...' for diagnostics;
 * exits 0 only if every check passed. Timeouts scale with TS_TIMEOUT_SCALE (default 1).
 * Standalone: librdkafka and libc only.
 */
#include <librdkafka/rdkafka.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IDEMP_MSGS 10

static int failures;
static double timeout_scale = 1.0;
static int verbose;

/* What the log and error callbacks saw; they run on our thread (log.queue, poll). */
struct seen {
    char pid[64];     /* "PID{Id:..,Epoch:..}" from "Acquired PID{...}" */
    char fatal[512];  /* first fatal or EOS-related error text */
    int delivered;    /* delivery reports without error, status persisted */
    int failed;       /* delivery reports with an error */
    char dr_err[256]; /* first delivery error */
};

static void pass(const char *name) {
    printf("ok - %s\n", name);
    fflush(stdout);
}

__attribute__((format(printf, 2, 3))) static void fail(const char *name, const char *fmt, ...) {
    char reason[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    printf("not ok - %s: %s\n", name, reason);
    fflush(stdout);
    failures++;
}

/* CHECK(cond, name, fmt, ...): 'ok - name', or 'not ok - name: reason' from fmt. */
#define CHECK(cond, name, ...) ((cond) ? pass(name) : fail(name, __VA_ARGS__))

static int tmout_ms(int base_ms) {
    return (int)(base_ms * timeout_scale);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    struct seen *s = rd_kafka_opaque(rk);
    const char *p;

    if (s && (p = strstr(buf, "Acquired PID{")) && !s->pid[0]) {
        size_t n = strcspn(p + 9, " ");
        snprintf(s->pid, sizeof(s->pid), "%.*s", (int)n, p + 9);
    }
    if (s && level <= 3 && !s->fatal[0])
        snprintf(s->fatal, sizeof(s->fatal), "%s: %s", fac, buf);
    /* What decides about idempotence is worth showing even when all is well. */
    if (verbose || level <= 4 || strstr(buf, "Acquired") || strstr(buf, "not supported") ||
        strstr(buf, "IdempotentProducer"))
        printf("# %s: %s %s\n", rd_kafka_name(rk), fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    struct seen *s = opaque;
    printf("# %s: error %s: %s\n", rd_kafka_name(rk), rd_kafka_err2name(err), reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL && !s->fatal[0]) {
        char buf[400];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        snprintf(s->fatal, sizeof(s->fatal), "fatal: %s", buf);
    }
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    struct seen *s = opaque;
    (void)rk;
    if (!m->err && rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_PERSISTED) {
        s->delivered++;
    } else {
        s->failed++;
        if (!s->dr_err[0])
            snprintf(s->dr_err, sizeof(s->dr_err), "%s", rd_kafka_err2str(m->err));
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *val) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, val, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        printf("# cannot set '%s=%s': %s\n", name, val, errstr);
        return -1;
    }
    return 0;
}

/* A configuration with the common settings, or NULL. 'seen' becomes the opaque. */
static rd_kafka_conf_t *conf_base(const char *brokers, struct seen *seen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char buf[32];

    snprintf(buf, sizeof(buf), "%d", tmout_ms(10000));
    if (conf_set(conf, "bootstrap.servers", brokers) || conf_set(conf, "log.queue", "true") ||
        conf_set(conf, "socket.timeout.ms", buf)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, seen);
    return conf;
}

/* Create a handle from conf (always consumed); its logs are served by rd_kafka_poll(). */
static rd_kafka_t *handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
    char errstr[512];
    rd_kafka_t *rk;

    if (!conf)
        return NULL;
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        printf("# cannot create client: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_set_log_queue(rk, NULL); /* the main queue */
    return rk;
}

static void handle_destroy(rd_kafka_t *rk) {
    if (!rk)
        return;
    rd_kafka_poll(rk, 0);
    rd_kafka_destroy(rk);
}

/* Wait for one admin result event of type 'type' on q; NULL on timeout. */
static rd_kafka_event_t *admin_wait(rd_kafka_t *rk, rd_kafka_queue_t *q, rd_kafka_event_type_t type,
                                    int timeout_ms) {
    double end = now_s() + timeout_ms / 1000.0;
    while (now_s() < end) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        rd_kafka_poll(rk, 0);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == type)
            return ev;
        rd_kafka_event_destroy(ev);
    }
    return NULL;
}

/* 0 and the topic exists, or -1 with the reason in errstr. */
static int topic_create(rd_kafka_t *rk, const char *topic, char *errstr, size_t errstr_size) {
    rd_kafka_NewTopic_t *nt;
    rd_kafka_AdminOptions_t *opts;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    char buf[512];
    int rc = -1;

    nt = rd_kafka_NewTopic_new(topic, 1, 1, buf, sizeof(buf));
    if (!nt) {
        snprintf(errstr, errstr_size, "%s", buf);
        return -1;
    }
    /* operation_timeout: the reply waits until the topic exists, not just was accepted. */
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, tmout_ms(20000), NULL, 0);
    rd_kafka_AdminOptions_set_operation_timeout(opts, tmout_ms(15000), NULL, 0);
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    ev = admin_wait(rk, q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, tmout_ms(25000));
    if (!ev) {
        snprintf(errstr, errstr_size, "no CreateTopics result within %d ms", tmout_ms(25000));
    } else if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "%s", rd_kafka_event_error_string(ev));
    } else {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        if (cnt != 1)
            snprintf(errstr, errstr_size, "%zu topic results, 1 expected", cnt);
        else if (rd_kafka_topic_result_error(res[0]))
            snprintf(errstr, errstr_size, "%s", rd_kafka_topic_result_error_string(res[0]));
        else
            rc = 0;
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

static void topic_delete(rd_kafka_t *rk, const char *topic) {
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev;

    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    ev = admin_wait(rk, q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, tmout_ms(10000));
    if (!ev)
        printf("# cannot delete topic '%s': no result\n", topic);
    else if (rd_kafka_event_error(ev))
        printf("# cannot delete topic '%s': %s\n", topic, rd_kafka_event_error_string(ev));
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy(dt);
}

static rd_kafka_resp_err_t produce(rd_kafka_t *rk, const char *topic, const char *payload) {
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                             RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
}

/* Step 2: idempotent producer. */
static void test_idempotence(const char *brokers, const char *topic) {
    struct seen seen = {0};
    rd_kafka_conf_t *conf = conf_base(brokers, &seen);
    rd_kafka_t *rk;
    char buf[64], fatal[512];
    int i, produced = 0;
    rd_kafka_resp_err_t err;

    snprintf(buf, sizeof(buf), "%d", tmout_ms(15000));
    if (conf && (conf_set(conf, "enable.idempotence", "true") || conf_set(conf, "debug", "eos") ||
                 conf_set(conf, "message.timeout.ms", buf))) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    if (conf)
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rk = handle_new(RD_KAFKA_PRODUCER, conf);
    if (!rk) {
        fail("idempotent-produce", "cannot create an idempotent producer");
        fail("idempotent-pid", "no producer");
        return;
    }

    for (i = 0; i < IDEMP_MSGS; i++) {
        snprintf(buf, sizeof(buf), "idempotent-%d", i);
        if ((err = produce(rk, topic, buf)))
            printf("# produce: %s\n", rd_kafka_err2str(err));
        else
            produced++;
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, tmout_ms(20000));
    rd_kafka_poll(rk, 0);

    err = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    CHECK(produced == IDEMP_MSGS && seen.delivered == IDEMP_MSGS && !err, "idempotent-produce",
          "%d/%d enqueued, %d persisted, %d failed (%s), outq %d%s%s", produced, IDEMP_MSGS,
          seen.delivered, seen.failed, seen.dr_err[0] ? seen.dr_err : "-", rd_kafka_outq_len(rk),
          err ? ", fatal error: " : "", err ? fatal : "");
    CHECK(seen.pid[0] && !err, "idempotent-pid", "no producer id acquired (debug=eos)%s%s",
          seen.fatal[0] ? "; " : "", seen.fatal);
    if (seen.pid[0])
        printf("# idempotent producer id: %s\n", seen.pid);
    handle_destroy(rk);
}

/* One transaction around one message; commit or abort. Returns 0 or -1 (reason printed
 * through CHECK()). */
static int txn_one(rd_kafka_t *rk, const char *topic, const char *payload, int commit,
                   const char *name) {
    rd_kafka_error_t *error;
    rd_kafka_resp_err_t err;

    if ((error = rd_kafka_begin_transaction(rk))) {
        fail(name, "begin_transaction: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return -1;
    }
    if ((err = produce(rk, topic, payload))) {
        fail(name, "produce: %s", rd_kafka_err2str(err));
        error = rd_kafka_abort_transaction(rk, tmout_ms(30000));
        if (error)
            rd_kafka_error_destroy(error);
        return -1;
    }
    /* Make sure the message is in the partition log before the outcome is decided, so
     * that the aborted one really has to be filtered by read_committed. */
    rd_kafka_flush(rk, tmout_ms(15000));
    if (commit)
        error = rd_kafka_commit_transaction(rk, tmout_ms(30000));
    else
        error = rd_kafka_abort_transaction(rk, tmout_ms(30000));
    if (error) {
        fail(name, "%s_transaction: %s%s", commit ? "commit" : "abort",
              rd_kafka_error_string(error), rd_kafka_error_is_fatal(error) ? " (fatal)" : "");
        rd_kafka_error_destroy(error);
        return -1;
    }
    pass(name);
    return 0;
}

/* Step 3: one committed and one aborted transaction. Returns 0 if both went through. */
static int test_transactions(const char *brokers, const char *topic, const char *suffix) {
    struct seen seen = {0};
    rd_kafka_conf_t *conf = conf_base(brokers, &seen);
    rd_kafka_t *rk;
    rd_kafka_error_t *error;
    char txid[128];
    int rc = -1;

    snprintf(txid, sizeof(txid), "tracesift-t1000-%s", suffix);
    if (conf && (conf_set(conf, "transactional.id", txid) || conf_set(conf, "debug", "eos"))) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    if (conf)
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rk = handle_new(RD_KAFKA_PRODUCER, conf);
    if (!rk) {
        fail("txn-init", "cannot create a transactional producer");
        return -1;
    }

    error = rd_kafka_init_transactions(rk, tmout_ms(30000));
    rd_kafka_poll(rk, 0);
    if (error) {
        fail("txn-init", "init_transactions: %s (%s%s)", rd_kafka_error_string(error),
              rd_kafka_error_name(error), rd_kafka_error_is_fatal(error) ? ", fatal" : "");
        rd_kafka_error_destroy(error);
        goto out;
    }
    pass("txn-init");
    if (seen.pid[0])
        printf("# transactional producer id: %s\n", seen.pid);

    if (txn_one(rk, topic, "txn-committed", 1, "txn-commit") == 0 &&
        txn_one(rk, topic, "txn-aborted", 0, "txn-abort") == 0)
        rc = 0;
out:
    handle_destroy(rk);
    return rc;
}

/* Read partition 0 of topic from the beginning to its end (for read_committed: the last
 * stable offset). Sets *committed / *aborted to whether those payloads were seen. */
static int read_all(const char *brokers, const char *topic, const char *isolation,
                    const char *suffix, int *committed, int *aborted, int *total, char *errstr,
                    size_t errstr_size) {
    struct seen seen = {0};
    rd_kafka_conf_t *conf = conf_base(brokers, &seen);
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_t *rk;
    rd_kafka_resp_err_t err;
    char group[160];
    double end;
    int rc = -1;

    *committed = *aborted = *total = 0;
    snprintf(group, sizeof(group), "tracesift-t1000-%s-%s", isolation, suffix);
    if (conf && (conf_set(conf, "group.id", group) || conf_set(conf, "isolation.level", isolation) ||
                 conf_set(conf, "enable.partition.eof", "true") ||
                 conf_set(conf, "enable.auto.commit", "false"))) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    rk = handle_new(RD_KAFKA_CONSUMER, conf);
    if (!rk) {
        snprintf(errstr, errstr_size, "cannot create a consumer");
        return -1;
    }
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if ((err = rd_kafka_assign(rk, parts))) {
        snprintf(errstr, errstr_size, "assign: %s", rd_kafka_err2str(err));
        goto out;
    }

    end = now_s() + tmout_ms(20000) / 1000.0;
    snprintf(errstr, errstr_size, "partition end not reached within %d ms", tmout_ms(20000));
    while (now_s() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        rd_kafka_poll(rk, 0);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            rc = 0;
            break;
        }
        if (m->err) {
            printf("# %s consumer: %s\n", isolation, rd_kafka_message_errstr(m));
        } else {
            (*total)++;
            if (m->len == 13 && !memcmp(m->payload, "txn-committed", 13))
                (*committed)++;
            if (m->len == 11 && !memcmp(m->payload, "txn-aborted", 11))
                (*aborted)++;
        }
        rd_kafka_message_destroy(m);
    }
out:
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    handle_destroy(rk);
    return rc;
}

/* Step 4. */
static void test_read(const char *brokers, const char *topic, const char *suffix) {
    int committed, aborted, total;
    char errstr[256];

    if (read_all(brokers, topic, "read_committed", suffix, &committed, &aborted, &total, errstr,
                 sizeof(errstr)))
        fail("read-committed", "%s", errstr);
    else
        CHECK(committed == 1 && aborted == 0, "read-committed",
              "saw %d committed and %d aborted transactional message(s), want 1 and 0 "
              "(%d messages)",
              committed, aborted, total);

    if (read_all(brokers, topic, "read_uncommitted", suffix, &committed, &aborted, &total,
                 errstr, sizeof(errstr)))
        fail("read-uncommitted", "%s", errstr);
    else
        CHECK(committed == 1 && aborted == 1, "read-uncommitted",
              "saw %d committed and %d aborted transactional message(s), want 1 and 1 "
              "(%d messages)",
              committed, aborted, total);
}

int main(void) {
    const char *brokers = getenv("TS_BROKERS");
    const char *scale = getenv("TS_TIMEOUT_SCALE");
    char topic[160], suffix[64], errstr[512];
    struct seen seen = {0};
    struct timespec ts;
    rd_kafka_t *admin;
    int txn_ok;

    if (!brokers || !*brokers)
        brokers = "127.0.0.1:9092";
    if (scale && *scale) {
        timeout_scale = strtod(scale, NULL);
        if (!(timeout_scale > 0))
            timeout_scale = 1.0;
    }
    verbose = getenv("TS_VERBOSE") && *getenv("TS_VERBOSE") && strcmp(getenv("TS_VERBOSE"), "0");

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(suffix, sizeof(suffix), "%ld-%d-%06ld", (long)ts.tv_sec, (int)getpid(),
             ts.tv_nsec / 1000);
    snprintf(topic, sizeof(topic), "tracesift-t1000-eos-%s", suffix);
    printf("# librdkafka %s, brokers %s, topic %s\n", rd_kafka_version_str(), brokers, topic);

    admin = handle_new(RD_KAFKA_PRODUCER, conf_base(brokers, &seen));
    if (!admin) {
        fail("create-topic", "cannot create an admin client");
        return 1;
    }
    if (topic_create(admin, topic, errstr, sizeof(errstr))) {
        fail("create-topic", "%s", errstr);
        handle_destroy(admin);
        return 1;
    }
    pass("create-topic");

    test_idempotence(brokers, topic);
    txn_ok = test_transactions(brokers, topic, suffix) == 0;
    if (txn_ok) {
        test_read(brokers, topic, suffix);
    } else {
        fail("read-committed", "skipped: the transactions did not go through");
        fail("read-uncommitted", "skipped: the transactions did not go through");
    }

    topic_delete(admin, topic);
    handle_destroy(admin);

    printf("# %s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
