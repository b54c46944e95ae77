/* tests/unit/t5001-time-arg.c - times on command lines (tstime_parse_arg) and record times in rec_info */
#include "record.h"
#include "test.h"
#include "tstime.h"

static int64_t parse(const char *s, int *ok)
{
	int64_t us = -42;
	*ok = tstime_parse_arg(s, &us) == 0;
	return us;
}

static void rfc3339(void)
{
	int ok;
	CHECK(parse("2026-11-26T10:00:00Z", &ok) == 1795687200000000LL && ok, "plain Z");
	CHECK(parse("2026-11-26T10:00:00.5Z", &ok) == 1795687200500000LL && ok, "a fraction");
	CHECK(parse("2026-11-26T10:00:00.123456789Z", &ok) == 1795687200123456LL && ok, "nanoseconds cut to us");
	CHECK(parse("2026-11-26T12:00:00+02:00", &ok) == 1795687200000000LL && ok, "an offset");
	CHECK(parse("2026-11-26t10:00:00z", &ok) == 1795687200000000LL && ok, "lowercase t and z");
	CHECK(parse("1970-01-01T00:00:00Z", &ok) == 0 && ok, "the epoch");
}

static void dates(void)
{
	int ok;
	CHECK(parse("2026-11-26", &ok) == 1795651200000000LL && ok, "a date is its midnight UTC");
	CHECK(parse("2024-02-29", &ok) == 1709164800000000LL && ok, "a leap day");
	parse("2023-02-29", &ok);
	CHECK(!ok, "2023-02-29 does not exist");
	parse("2026-13-01", &ok);
	CHECK(!ok, "month 13");
	parse("2026-1-01", &ok);
	CHECK(!ok, "a short month");
}

static void epoch_ms(void)
{
	int ok;
	CHECK(parse("1795687200000", &ok) == 1795687200000000LL && ok, "epoch ms");
	CHECK(parse("0", &ok) == 0 && ok, "zero");
	CHECK(parse("999999999999999", &ok) == 999999999999999000LL && ok, "15 digits");
	parse("1000000000000000", &ok);
	CHECK(!ok, "16 digits are refused (no overflow)");
	parse("-5", &ok);
	CHECK(!ok, "negative");
	parse("17956872000001", &ok);
	CHECK(ok, "14 digits");
}

static void refused(void)
{
	static const char *const bad[] = {
		"", "now", "2026-11-26 10:00:00Z", "2026-11-26T10:00:00", "2026-11-26T10:00:00+0200",
		"2026-11-26T25:00:00Z", "2026-11-26T10:00:00.Z", "12abc", "2026-11-26T10:00:00Zjunk", " 2026-11-26",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ok;
		int64_t v = parse(bad[i], &ok);
		CHECK(!ok && v == -42, "'%s' accepted (%lld) or *unix_us written", bad[i], (long long)v);
	}
}

/* The validator hands the record's times over, as instants. */
static void record_times(void)
{
	const char *rec = "{\"v\":1,\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"name\":\"chat\","
	                  "\"start_time\":\"2026-11-26T12:00:00.000001+02:00\",\"end_time\":\"2026-11-26T10:00:01Z\"}";
	struct rec_info info;
	char err[256];
	REQUIRE(rec_validate(rec, strlen(rec), NULL, &info, err, sizeof(err)) == REC_OK, "%s", err);
	CHECK(info.start_us == 1795687200000001LL, "start_us %lld", (long long)info.start_us);
	CHECK(info.end_us == 1795687201000000LL, "end_us %lld", (long long)info.end_us);
	/* span times are not the record's */
	const char *spans = "{\"v\":1,\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"name\":\"chat\","
	                    "\"spans\":[{\"span_id\":\"00f067aa0ba902b7\",\"name\":\"s\",\"type\":\"llm\","
	                    "\"start_time\":\"2030-01-01T00:00:00Z\",\"end_time\":\"2030-01-01T00:00:01Z\"}],"
	                    "\"start_time\":\"2026-11-26T10:00:00Z\",\"end_time\":\"2026-11-26T10:00:01Z\"}";
	REQUIRE(rec_validate(spans, strlen(spans), NULL, &info, err, sizeof(err)) == REC_OK, "%s", err);
	CHECK(info.start_us == 1795687200000000LL && info.end_us == 1795687201000000LL, "span times leaked: %lld %lld",
	      (long long)info.start_us, (long long)info.end_us);
}

int main(void)
{
	RUN(rfc3339);
	RUN(dates);
	RUN(epoch_ms);
	RUN(refused);
	RUN(record_times);
	TEST_EXIT();
}
