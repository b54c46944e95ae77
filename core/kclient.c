/* core/kclient.c - Kafka client set-up: defaults, then the user's properties, then the required ones (see kclient.h) */
#include "kclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errfmt.h"

/* Where the user gave a property, as they wrote it. */
static void user_source(const struct kclient_user *u, char *out, size_t size)
{
	if (u->file)
		snprintf(out, size, "'%s': kafka.%s = %s", u->file, u->name, u->value);
	else
		snprintf(out, size, "%s%s=%s", u->flag ? u->flag : "-X ", u->name, u->value);
}

static int set_props(rd_kafka_conf_t *conf, const struct kclient_prop *p, int n, char *errstr, size_t size)
{
	char err[512];
	for (int i = 0; i < n; i++)
		if (rd_kafka_conf_set(conf, p[i].name, p[i].value, err, sizeof(err)) != RD_KAFKA_CONF_OK)
			return errfmt(errstr, size, "%s=%s: %s", p[i].name, p[i].value, err);
	return 0;
}

/* Both configurations' values of name are the same, as librdkafka spells
 * them ("all" is "-1"); a property that is not set (a topic property before
 * any topic property is) reads as "".  1 same, 0 not, -1 out of memory. */
static int same_value(rd_kafka_conf_t *a, rd_kafka_conf_t *b, const char *name)
{
	char *v[2] = { NULL, NULL };
	rd_kafka_conf_t *conf[2] = { a, b };
	int rc = -1;
	for (int i = 0; i < 2; i++) {
		size_t n = 0;
		if (rd_kafka_conf_get(conf[i], name, NULL, &n) != RD_KAFKA_CONF_OK)
			n = 0;
		if (!(v[i] = malloc(n + 1)))
			goto out;
		v[i][0] = '\0';
		if (n && rd_kafka_conf_get(conf[i], name, v[i], &n) != RD_KAFKA_CONF_OK)
			v[i][0] = '\0';
	}
	rc = strcmp(v[0], v[1]) == 0;
out:
	free(v[0]);
	free(v[1]);
	return rc;
}

/* One user property set on top of the tables' properties: 0, or -1 with errstr. */
static int check_one(const struct kclient_tables *t, const struct kclient_user *u, char *errstr, size_t size)
{
	char src[1024], err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new(), *req = NULL;
	int rc = -1;
	user_source(u, src, sizeof(src));
	if (set_props(conf, t->tune, t->ntune, err, sizeof(err)) ||
	    set_props(conf, t->must, t->nmust, err, sizeof(err))) {
		errfmt(errstr, size, "%s: %s", t->client, err);
		goto out;
	}
	req = rd_kafka_conf_dup(conf);
	if (rd_kafka_conf_set(conf, u->name, u->value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		errfmt(errstr, size, "%s: %s", src, err);
		goto out;
	}
	for (int m = 0; m < t->nmust; m++) {
		int same = same_value(req, conf, t->must[m].name);
		if (same < 0) {
			errfmt(errstr, size, "%s: out of memory", src);
			goto out;
		}
		if (!same) {
			errfmt(errstr, size, "%s: %s needs %s=%s (%s); it cannot be changed", src, t->client,
			       t->must[m].name, t->must[m].value, t->must[m].why ? t->must[m].why : "required");
			goto out;
		}
	}
	rc = 0;
out:
	if (req)
		rd_kafka_conf_destroy(req);
	rd_kafka_conf_destroy(conf);
	return rc;
}

int kclient_check(const struct kclient_tables *t, const struct kclient_user *user, int nuser,
                  char *errstr, size_t size)
{
	for (int i = 0; i < nuser; i++) {
		int later = 0;
		for (int j = i + 1; j < nuser && !later; j++)
			later = !strcmp(user[j].name, user[i].name);
		if (!later && check_one(t, &user[i], errstr, size))
			return -1;
	}
	return 0;
}

rd_kafka_conf_t *kclient_conf_new(const struct kclient_tables *t, const char *brokers,
                                  const struct kclient_user *user, int nuser, char *errstr, size_t size)
{
	char err[512], src[1024];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (brokers && rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		errfmt(errstr, size, "%s", err);
		goto bad;
	}
	if (set_props(conf, t->tune, t->ntune, errstr, size))
		goto bad;
	for (int i = 0; i < nuser; i++)
		if (rd_kafka_conf_set(conf, user[i].name, user[i].value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
			user_source(&user[i], src, sizeof(src));
			errfmt(errstr, size, "%s: %s", src, err);
			goto bad;
		}
	if (set_props(conf, t->must, t->nmust, errstr, size))
		goto bad;
	return conf;
bad:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

rd_kafka_t *kclient_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr, size_t size)
{
	char err[512];
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		errfmt(errstr, size, "%s", err);
	}
	return rk;
}
