/* tests/unit/t0005-kclient.c - Kafka client set-up: the check of the user's properties, and the order they are set in */
#include "kclient.h"
#include "test.h"

static const struct kclient_prop tune[] = {
	{ "linger.ms", "10", NULL },
	{ "auto.offset.reset", "earliest", NULL },    /* a topic property */
};
static const struct kclient_prop must[] = {
	{ "enable.idempotence", "true", "WHY-IDEMPOTENCE" },
	{ "acks", "all", "WHY-ACKS" },                 /* a topic property, with an alias */
	{ "isolation.level", "read_committed", "WHY-ISOLATION" },
};
static const struct kclient_tables tables = { "the test's client", tune, 2, must, 3 };

static int starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* kclient_check of the properties NAME=VALUE (on the command line) in order. */
static int check(char *err, size_t size, int n, ...)
{
	struct kclient_user u[8];
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		u[i].name = va_arg(ap, const char *);
		u[i].value = va_arg(ap, const char *);
		u[i].file = NULL;
		u[i].flag = NULL;
	}
	va_end(ap);
	err[0] = '\0';
	return kclient_check(&tables, u, n, err, size);
}

static void required_value_itself_is_accepted(void)
{
	char err[1024];
	CHECK(check(err, sizeof(err), 1, "enable.idempotence", "true") == 0, "%s", err);
	CHECK(check(err, sizeof(err), 1, "isolation.level", "read_committed") == 0, "%s", err);
	CHECK(check(err, sizeof(err), 1, "acks", "all") == 0, "%s", err);
	CHECK(check(err, sizeof(err), 1, "acks", "-1") == 0, "acks=-1 is acks=all: %s", err);
	CHECK(check(err, sizeof(err), 3, "acks", "all", "isolation.level", "read_committed",
	            "enable.idempotence", "true") == 0, "%s", err);
}

static void tunables_and_others_are_accepted(void)
{
	char err[1024];
	CHECK(check(err, sizeof(err), 1, "linger.ms", "5") == 0, "a tunable: %s", err);
	CHECK(check(err, sizeof(err), 1, "auto.offset.reset", "latest") == 0, "a tunable topic property: %s", err);
	CHECK(check(err, sizeof(err), 2, "client.id", "t0005", "security.protocol", "plaintext") == 0, "%s", err);
	CHECK(check(err, sizeof(err), 0) == 0, "no property at all: %s", err);
}

static void changing_a_required_one_is_refused(void)
{
	char err[1024];
	REQUIRE(check(err, sizeof(err), 1, "isolation.level", "read_uncommitted") == -1, "accepted");
	CHECK(!strcmp(err, "-X isolation.level=read_uncommitted: the test's client needs "
	              "isolation.level=read_committed (WHY-ISOLATION); it cannot be changed"), "%s", err);
	CHECK(check(err, sizeof(err), 1, "enable.idempotence", "false") == -1 &&
	      strstr(err, "needs enable.idempotence=true (WHY-IDEMPOTENCE)"), "%s", err);
	CHECK(check(err, sizeof(err), 1, "acks", "1") == -1 && strstr(err, "needs acks=all (WHY-ACKS)"), "%s", err);
	/* after accepted ones, the bad one is named */
	CHECK(check(err, sizeof(err), 3, "linger.ms", "5", "acks", "0", "client.id", "x") == -1 &&
	      starts(err, "-X acks=0: "), "%s", err);
}

static void an_alias_is_refused_as_what_it_changes(void)
{
	char err[1024];
	REQUIRE(check(err, sizeof(err), 1, "request.required.acks", "0") == -1, "request.required.acks=0 accepted");
	CHECK(!strcmp(err, "-X request.required.acks=0: the test's client needs acks=all (WHY-ACKS); "
	              "it cannot be changed"), "%s", err);
	CHECK(check(err, sizeof(err), 1, "request.required.acks", "all") == 0, "the alias with the value: %s", err);
	CHECK(check(err, sizeof(err), 1, "request.required.acks", "-1") == 0, "%s", err);
	CHECK(check(err, sizeof(err), 1, "enable.idempotence", "false") == -1, "%s", err);
}

static void unknown_or_invalid_is_refused(void)
{
	char err[1024];
	REQUIRE(check(err, sizeof(err), 1, "no.such.property", "1") == -1, "an unknown property accepted");
	CHECK(starts(err, "-X no.such.property=1: ") && strstr(err, "No such configuration property"),
	      "%s", err);
	CHECK(check(err, sizeof(err), 1, "linger.ms", "soon") == -1 && starts(err, "-X linger.ms=soon: ") &&
	      strstr(err, "Invalid value"), "%s", err);
	CHECK(check(err, sizeof(err), 1, "isolation.level", "sometimes") == -1 && strstr(err, "Invalid value"),
	      "%s", err);
}

static void only_the_last_of_one_name_counts(void)
{
	char err[1024];
	/* a flag over the file's line: the later one is what is set */
	CHECK(check(err, sizeof(err), 2, "acks", "0", "acks", "all") == 0, "a later acks=all: %s", err);
	CHECK(check(err, sizeof(err), 2, "acks", "all", "acks", "0") == -1 && strstr(err, "acks=0"), "%s", err);
	CHECK(check(err, sizeof(err), 2, "no.such", "1", "no.such", "2") == -1 && strstr(err, "no.such=2"), "%s", err);
}

static void says_where_the_property_came_from(void)
{
	char err[1024];
	struct kclient_user u[] = {
		{ .name = "linger.ms", .value = "1", .file = "/etc/x.conf" },
		{ .name = "isolation.level", .value = "read_uncommitted", .file = "/etc/x.conf" },
	};
	REQUIRE(kclient_check(&tables, u, 2, err, sizeof(err)) == -1, "accepted");
	CHECK(starts(err, "'/etc/x.conf': kafka.isolation.level = read_uncommitted: the test's client needs "),
	      "%s", err);
	struct kclient_user s = { .name = "acks", .value = "1", .flag = "-s kafka." };
	REQUIRE(kclient_check(&tables, &s, 1, err, sizeof(err)) == -1, "accepted");
	CHECK(starts(err, "-s kafka.acks=1: "), "%s", err);
	/* a short buffer holds the start of the message, terminated */
	char small[12];
	memset(small, 'x', sizeof(small));
	CHECK(kclient_check(&tables, &s, 1, small, sizeof(small)) == -1 && !strcmp(small, "-s kafka.ac"), "%.12s",
	      small);
	CHECK(kclient_check(&tables, &s, 1, NULL, 0) == -1, "no buffer");
}

static void get(rd_kafka_conf_t *conf, const char *name, char *out, size_t size)
{
	if (rd_kafka_conf_get(conf, name, out, &size) != RD_KAFKA_CONF_OK)
		snprintf(out, size, "(unset)");
}

static void conf_is_defaults_then_user_then_required(void)
{
	char err[1024], v[256];
	struct kclient_user u[] = {
		{ .name = "linger.ms", .value = "7" },             /* over a tunable */
		{ .name = "client.id", .value = "t0005" },         /* neither */
		{ .name = "acks", .value = "1" },                  /* over a required one: never, check refuses it */
		{ .name = "bootstrap.servers", .value = "127.0.0.1:2" }, /* over the brokers given */
	};
	rd_kafka_conf_t *conf = kclient_conf_new(&tables, "127.0.0.1:1", u, 4, err, sizeof(err));
	REQUIRE(conf, "%s", err);
	get(conf, "linger.ms", v, sizeof(v));
	CHECK(!strcmp(v, "7"), "linger.ms %s", v);
	get(conf, "auto.offset.reset", v, sizeof(v));
	CHECK(!strcmp(v, "smallest"), "auto.offset.reset %s (earliest)", v);
	get(conf, "client.id", v, sizeof(v));
	CHECK(!strcmp(v, "t0005"), "client.id %s", v);
	get(conf, "acks", v, sizeof(v));
	CHECK(!strcmp(v, "-1"), "acks %s: the required value is set last", v);
	get(conf, "enable.idempotence", v, sizeof(v));
	CHECK(!strcmp(v, "true"), "enable.idempotence %s", v);
	get(conf, "bootstrap.servers", v, sizeof(v));
	CHECK(!strcmp(v, "127.0.0.1:2"), "bootstrap.servers %s", v);
	rd_kafka_conf_destroy(conf);

	conf = kclient_conf_new(&tables, NULL, NULL, 0, err, sizeof(err));
	REQUIRE(conf, "%s", err);
	get(conf, "bootstrap.servers", v, sizeof(v));
	CHECK(!strcmp(v, "(unset)") || !strcmp(v, ""), "brokers NULL: bootstrap.servers %s", v);
	rd_kafka_conf_destroy(conf);

	struct kclient_user bad = { .name = "no.such", .value = "1", .file = "f.conf" };
	CHECK(!kclient_conf_new(&tables, NULL, &bad, 1, err, sizeof(err)) &&
	      starts(err, "'f.conf': kafka.no.such = 1: "), "%s", err);
}

static void new_client_owns_conf(void)
{
	char err[512];
	static const struct kclient_prop txn[] = { { "transactional.id", "t0005", "WHY" } };
	const struct kclient_tables t = { "the test's producer", NULL, 0, txn, 1 };
	rd_kafka_conf_t *conf = kclient_conf_new(&t, NULL, NULL, 0, err, sizeof(err));
	REQUIRE(conf, "%s", err);
	rd_kafka_t *rk = kclient_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	REQUIRE(rk, "%s", err);
	rd_kafka_destroy(rk);
	/* librdkafka refuses the combination: NULL, the reason, and conf is freed (ASan) */
	struct kclient_user off = { .name = "enable.idempotence", .value = "false" };
	conf = kclient_conf_new(&t, NULL, &off, 1, err, sizeof(err));
	REQUIRE(conf, "%s", err);
	rk = kclient_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	CHECK(!rk && strstr(err, "enable.idempotence"), "%s", err);
	if (rk)
		rd_kafka_destroy(rk);
}

int main(void)
{
	RUN(required_value_itself_is_accepted);
	RUN(tunables_and_others_are_accepted);
	RUN(changing_a_required_one_is_refused);
	RUN(an_alias_is_refused_as_what_it_changes);
	RUN(unknown_or_invalid_is_refused);
	RUN(only_the_last_of_one_name_counts);
	RUN(says_where_the_property_came_from);
	RUN(conf_is_defaults_then_user_then_required);
	RUN(new_client_owns_conf);
	TEST_EXIT();
}
