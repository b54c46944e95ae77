/* replay/output.c - where replayed records go: JSONL to stdout or a file (zstd or plain), or a topic */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "afile.h"
#include "replay.h"

/* Lines are gathered into a buffer of this size before they are compressed
 * or written. */
#define OUT_BUF (1 << 20)

struct output {
	FILE *f;
	const char *path;     /* NULL: stdout */
	char *tmp;            /* PATH.tmp.PID while it is written */
	ZSTD_CCtx *zc;        /* NULL: plain */
	char *buf;            /* lines not yet written */
	size_t len;
	char *zbuf;           /* compressed bytes */
	size_t zcap;
	int failed;
};

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !memcmp(s + n - k, suffix, k);
}

struct output *output_open(const char *path, int zstd_level, char *errstr, size_t size)
{
	struct output *o = calloc(1, sizeof(*o));
	if (!o || !(o->buf = malloc(OUT_BUF))) {
		free(o);
		snprintf(errstr, size, "out of memory");
		return NULL;
	}
	if (!path || !strcmp(path, "-")) {
		o->f = stdout;
		return o;
	}
	o->path = path;
	if (ends_with(path, ".zst")) {
		o->zcap = ZSTD_CStreamOutSize();
		if (!(o->zc = ZSTD_createCCtx()) || !(o->zbuf = malloc(o->zcap)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(o->zc, ZSTD_c_compressionLevel, zstd_level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(o->zc, ZSTD_c_checksumFlag, 1))) {
			snprintf(errstr, size, "cannot set up zstd compression (level %d)", zstd_level);
			goto fail;
		}
	}
	size_t n = strlen(path) + 32;
	if (!(o->tmp = malloc(n))) {
		snprintf(errstr, size, "out of memory");
		goto fail;
	}
	snprintf(o->tmp, n, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(errstr, size, "cannot create '%s': %s", o->tmp, strerror(errno));
		goto fail;
	}
	if (!(o->f = fdopen(fd, "wb"))) {
		snprintf(errstr, size, "cannot write '%s': %s", o->tmp, strerror(errno));
		close(fd);
		unlink(o->tmp);
		goto fail;
	}
	return o;
fail:
	ZSTD_freeCCtx(o->zc);
	free(o->zbuf);
	free(o->tmp);
	free(o->buf);
	free(o);
	return NULL;
}

const char *output_name(const struct output *o)
{
	return o->path ? o->path : "-";
}

/* Writes the buffered lines (compressed when zstd); end: and ends the zstd
 * frame.  0, or -1 with errstr. */
static int flush_buf(struct output *o, int end, char *errstr, size_t size)
{
	if (!o->zc) {
		if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len)
			goto werr;
		o->len = 0;
		return 0;
	}
	ZSTD_inBuffer in = { o->buf, o->len, 0 };
	ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
	for (;;) {
		ZSTD_outBuffer out = { o->zbuf, o->zcap, 0 };
		size_t left = ZSTD_compressStream2(o->zc, &out, &in, mode);
		if (ZSTD_isError(left)) {
			snprintf(errstr, size, "zstd: %s", ZSTD_getErrorName(left));
			return -1;
		}
		if (out.pos && fwrite(o->zbuf, 1, out.pos, o->f) != out.pos)
			goto werr;
		if (end ? left == 0 : in.pos == in.size)
			break;
	}
	o->len = 0;
	return 0;
werr:
	snprintf(errstr, size, "write to '%s': %s", o->path ? o->path : "stdout", strerror(errno));
	return -1;
}

int output_line(struct output *o, const char *rec, size_t len, char *errstr, size_t size)
{
	if (o->failed) {
		snprintf(errstr, size, "write to '%s' failed before", output_name(o));
		return -1;
	}
	if (o->len + len + 1 > OUT_BUF && o->len && flush_buf(o, 0, errstr, size))
		goto fail;
	if (len + 1 > OUT_BUF) {
		/* a record larger than the buffer goes alone */
		char *copy = malloc(len + 1), *keep = o->buf;
		if (!copy) {
			snprintf(errstr, size, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < len; i++)
			copy[i] = rec[i] == '\n' || rec[i] == '\r' ? ' ' : rec[i];
		copy[len] = '\n';
		o->buf = copy;
		o->len = len + 1;
		int rc = flush_buf(o, 0, errstr, size);
		o->buf = keep;
		free(copy);
		if (rc)
			goto fail;
		return 0;
	}
	/* A raw line break can only be whitespace between tokens (JSON escapes
	 * it inside strings), so a space keeps the record the same JSON. */
	char *d = o->buf + o->len;
	for (size_t i = 0; i < len; i++)
		d[i] = rec[i] == '\n' || rec[i] == '\r' ? ' ' : rec[i];
	d[len] = '\n';
	o->len += len + 1;
	if (!o->path && o->len >= OUT_BUF / 2 && flush_buf(o, 0, errstr, size))
		goto fail;
	return 0;
fail:
	o->failed = 1;
	return -1;
}

int output_close(struct output *o, int keep, char *errstr, size_t size)
{
	if (!o)
		return 0;
	int rc = 0;
	errstr[0] = '\0';
	if (o->failed)
		keep = 0;
	if (!o->path) {
		if ((keep && flush_buf(o, 0, errstr, size)) || fflush(stdout) || ferror(stdout)) {
			if (!errstr[0])
				snprintf(errstr, size, "write to stdout: %s", strerror(errno));
			rc = -1;
		}
		goto out;
	}
	if (keep && flush_buf(o, 1, errstr, size))
		keep = 0;
	if (afile_finish(o->f, o->tmp, o->path, keep, errstr, size))
		rc = -1;
out:
	ZSTD_freeCCtx(o->zc);
	free(o->zbuf);
	free(o->tmp);
	free(o->buf);
	free(o);
	return rc;
}

/* ---- a topic ------------------------------------------------------------ */

struct topic_out {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	uint64_t delivered, failed;
	char first_err[256];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct topic_out *t = opaque;
	if (m->err) {
		if (!t->failed++)
			snprintf(t->first_err, sizeof(t->first_err), "%s", rd_kafka_err2str(m->err));
	} else {
		t->delivered++;
	}
}

struct topic_out *topic_out_new(rd_kafka_conf_t *conf, const char *topic, char *errstr, size_t size)
{
	char err[512];
	struct topic_out *t = calloc(1, sizeof(*t));
	if (!t) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, size, "out of memory");
		return NULL;
	}
	static const char *const props[][2] = {
		{ "enable.idempotence", "true" }, { "acks", "all" },
	};
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err)))
			goto bad;
	rd_kafka_conf_set_opaque(conf, t);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	if (!(t->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))))
		goto bad;
	if (!(t->rkt = rd_kafka_topic_new(t->rk, topic, NULL))) {
		snprintf(errstr, size, "topic '%s': %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
		rd_kafka_destroy(t->rk);
		free(t);
		return NULL;
	}
	return t;
bad:
	snprintf(errstr, size, "%s", err);
	rd_kafka_conf_destroy(conf);
	free(t);
	return NULL;
}

int topic_out_send(struct topic_out *t, const void *key, size_t key_len, const char *payload, size_t len,
                   int64_t ts_ms, const rd_kafka_headers_t *headers, volatile sig_atomic_t *run,
                   char *errstr, size_t size)
{
	char fatal[256];
	for (;;) {
		rd_kafka_headers_t *h = headers ? rd_kafka_headers_copy(headers) : NULL;
		rd_kafka_resp_err_t err = rd_kafka_producev(
			t->rk, RD_KAFKA_V_RKT(t->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)payload, len),
			RD_KAFKA_V_TIMESTAMP(ts_ms > 0 ? ts_ms : 0), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
		if (!err) {
			rd_kafka_poll(t->rk, 0);
			return 0;
		}
		if (h)
			rd_kafka_headers_destroy(h); /* not sent: still ours */
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			if (rd_kafka_fatal_error(t->rk, fatal, sizeof(fatal)))
				snprintf(errstr, size, "producer: %s", fatal);
			else
				snprintf(errstr, size, "producer: %s", rd_kafka_err2str(err));
			return -1;
		}
		if (!*run) {
			snprintf(errstr, size, "producer queue full when stopped");
			return -1;
		}
		rd_kafka_poll(t->rk, 100);
	}
}

uint64_t topic_out_close(struct topic_out *t, int timeout_ms, uint64_t *delivered, char *errstr, size_t size)
{
	if (!t)
		return 0;
	rd_kafka_flush(t->rk, timeout_ms);
	uint64_t left = (uint64_t)rd_kafka_outq_len(t->rk), failed = t->failed + left;
	if (t->failed)
		snprintf(errstr, size, "%s", t->first_err);
	else if (left)
		snprintf(errstr, size, "%llu messages still queued after %d ms", (unsigned long long)left, timeout_ms);
	if (delivered)
		*delivered = t->delivered;
	rd_kafka_topic_destroy(t->rkt);
	rd_kafka_destroy(t->rk);
	free(t);
	return failed;
}
