/* replay/report.c - an audit summary of a replayed range: models, tags, days, errors, tokens, latency */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "replay.h"
#include "tally.h"
#include "tstime.h"

struct figure {
	double sum;
	uint64_t n;
};

struct report {
	uint64_t traces, errors;
	struct tally model, tag, day, errtype;
	struct figure tok_in, tok_out, tok_total;
	struct nums lat, ttft;
};

struct report *report_new(void)
{
	return calloc(1, sizeof(struct report));
}

void report_destroy(struct report *r)
{
	if (!r)
		return;
	tally_release(&r->model);
	tally_release(&r->tag);
	tally_release(&r->day);
	tally_release(&r->errtype);
	nums_release(&r->lat);
	nums_release(&r->ttft);
	free(r);
}

/* A top-level field's value, parsed alone (its slice of the record). */
static cJSON *parse_slice(const char *buf, struct rec_slice s)
{
	return s.len ? cJSON_ParseWithLength(buf + s.off, s.len) : NULL;
}

static void add_count(struct figure *f, const cJSON *usage, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, key);
	if (cJSON_IsNumber(v)) {
		f->sum += v->valuedouble;
		f->n++;
	}
}

void report_add(struct report *r, const char *buf, const struct rec_info *info)
{
	r->traces++;

	cJSON *model = parse_slice(buf, info->model);
	tally_add(&r->model, cJSON_IsString(model) ? model->valuestring : "(none)", 1);
	cJSON_Delete(model);

	/* each tag once per trace */
	cJSON *tags = parse_slice(buf, info->tags);
	int ntags = 0;
	const cJSON *t, *u;
	cJSON_ArrayForEach(t, tags) {
		if (!cJSON_IsString(t))
			continue;
		int again = 0;
		cJSON_ArrayForEach(u, tags) {
			if (u == t)
				break;
			again |= cJSON_IsString(u) && !strcmp(u->valuestring, t->valuestring);
		}
		if (!again)
			tally_add(&r->tag, t->valuestring, 1);
		ntags++;
	}
	if (!ntags)
		tally_add(&r->tag, "(none)", 1);
	cJSON_Delete(tags);

	char day[16];
	int64_t secs = info->start_us >= 0 ? info->start_us / 1000000 : -((-info->start_us + 999999) / 1000000);
	time_t sec = (time_t)secs;
	struct tm tm;
	if (gmtime_r(&sec, &tm) && strftime(day, sizeof(day), "%Y-%m-%d", &tm))
		tally_add(&r->day, day, 1);
	else
		tally_add(&r->day, "(unknown)", 1);

	if (info->has_error) {
		cJSON *err = parse_slice(buf, info->error);
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(err, "type");
		r->errors++;
		tally_add(&r->errtype, cJSON_IsString(type) ? type->valuestring : "(none)", 1);
		cJSON_Delete(err);
	}

	cJSON *usage = parse_slice(buf, info->usage);
	add_count(&r->tok_in, usage, "input_tokens");
	add_count(&r->tok_out, usage, "output_tokens");
	cJSON_Delete(usage);
	if (info->total_tokens >= 0) {
		r->tok_total.sum += (double)info->total_tokens;
		r->tok_total.n++;
	}
	if (info->latency_total >= 0)
		nums_add(&r->lat, info->latency_total);
	if (info->ttft >= 0)
		nums_add(&r->ttft, info->ttft);
}

/* ---- printing ------------------------------------------------------------ */

static uint64_t invalid_total(const struct report_head *h)
{
	uint64_t n = 0;
	for (int i = 0; i <= REC_REASON_COUNT; i++)
		n += h->invalid[i];
	return n;
}

static const char *reason_name(int i)
{
	return i < REC_REASON_COUNT ? rec_reason_name((enum rec_reason)i) : "empty";
}

static void num_or_null(cJSON *o, const char *key, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

static void time_or_null(cJSON *o, const char *key, int64_t us)
{
	char ts[TSTIME_LEN];
	if (us < 0) {
		cJSON_AddNullToObject(o, key);
	} else {
		tstime_format(us, ts);
		cJSON_AddStringToObject(o, key, ts);
	}
}

static double mean(const struct figure *f)
{
	return f->n ? f->sum / (double)f->n : NAN;
}

static void figure_json(cJSON *o, const char *key, const struct figure *f)
{
	cJSON *x = cJSON_AddObjectToObject(o, key);
	cJSON_AddNumberToObject(x, "sum", f->sum);
	cJSON_AddNumberToObject(x, "count", (double)f->n);
	num_or_null(x, "mean", mean(f));
}

static int print_json(struct report *r, FILE *out, const struct report_head *h)
{
	cJSON *root = cJSON_CreateObject(), *x;
	if (!root)
		return -1;
	cJSON_AddStringToObject(root, "type", "report");
	cJSON_AddStringToObject(root, "source", h->source);
	x = cJSON_AddObjectToObject(root, "window");
	time_or_null(x, "from", h->from_us);
	time_or_null(x, "to", h->to_us);
	cJSON_AddStringToObject(x, "by", h->by);
	cJSON_AddBoolToObject(root, "complete", h->complete);
	cJSON_AddNumberToObject(root, "read", (double)h->read);
	cJSON_AddNumberToObject(root, "in_window", (double)h->in_window);
	x = cJSON_AddObjectToObject(root, "invalid");
	cJSON_AddNumberToObject(x, "count", (double)invalid_total(h));
	cJSON *by = cJSON_AddObjectToObject(x, "by_reason");
	for (int i = 1; i <= REC_REASON_COUNT; i++)
		if (h->invalid[i])
			cJSON_AddNumberToObject(by, reason_name(i), (double)h->invalid[i]);
	cJSON_AddNumberToObject(root, "filtered_out", (double)h->filtered_out);
	cJSON_AddNumberToObject(root, "traces", (double)r->traces);
	cJSON_AddItemToObject(root, "by_model", tally_json(&r->model, 0));
	cJSON_AddItemToObject(root, "by_tag", tally_json(&r->tag, 0));
	cJSON_AddItemToObject(root, "by_day", tally_json(&r->day, 1));
	x = cJSON_AddObjectToObject(root, "errors");
	cJSON_AddNumberToObject(x, "count", (double)r->errors);
	cJSON_AddItemToObject(x, "by_type", tally_json(&r->errtype, 0));
	x = cJSON_AddObjectToObject(root, "tokens");
	figure_json(x, "input", &r->tok_in);
	figure_json(x, "output", &r->tok_out);
	figure_json(x, "total", &r->tok_total);
	nums_json(root, "latency_ms", &r->lat);
	nums_json(root, "ttft_ms", &r->ttft);
	char *s = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!s)
		return -1;
	fputs(s, out);
	fputc('\n', out);
	free(s);
	return 0;
}

static const char *ms_text(double v, char *buf, size_t size)
{
	if (!isfinite(v))
		return "-";
	snprintf(buf, size, v == floor(v) && fabs(v) < 1e15 ? "%.0f" : "%.3f", v);
	return buf;
}

static const char *mean_text(const struct figure *f, char *buf, size_t size)
{
	if (!f->n)
		return "-";
	snprintf(buf, size, "%.2f", mean(f));
	return buf;
}

static void print_text(struct report *r, FILE *out, const struct report_head *h)
{
	char from[TSTIME_LEN] = "the beginning", to[TSTIME_LEN] = "the end", a[32], b[32], c[32];
	if (h->from_us >= 0)
		tstime_format(h->from_us, from);
	if (h->to_us >= 0)
		tstime_format(h->to_us, to);
	fprintf(out, "replay report: %s, %s from %s to %s (exclusive)%s\n", h->source,
	        !strcmp(h->by, "timestamp") ? "Kafka timestamps" : "start_time", from, to,
	        h->complete ? "" : " - INTERRUPTED: the range was not read to its end");
	fprintf(out, "  %llu records read, %llu in the window, %llu invalid, %llu filtered out: %llu traces\n",
	        (unsigned long long)h->read, (unsigned long long)h->in_window, (unsigned long long)invalid_total(h),
	        (unsigned long long)h->filtered_out, (unsigned long long)r->traces);
	if (invalid_total(h)) {
		fprintf(out, "  invalid:");
		for (int i = 1, n = 0; i <= REC_REASON_COUNT; i++)
			if (h->invalid[i])
				fprintf(out, "%s %s %llu", n++ ? "," : "", reason_name(i), (unsigned long long)h->invalid[i]);
		fputc('\n', out);
	}
	tally_print(out, "per model", "MODEL", "TRACES", &r->model, 0, r->traces);
	tally_print(out, "per tag (a trace counts once per tag it has)", "TAG", "TRACES", &r->tag, 0, r->traces);
	tally_print(out, "per day (UTC, of start_time)", "DAY", "TRACES", &r->day, 1, r->traces);
	fprintf(out, "\nerrors: %llu (%.1f%%)\n", (unsigned long long)r->errors,
	        r->traces ? 100.0 * (double)r->errors / (double)r->traces : 0);
	if (r->errors)
		tally_print(out, "errors per type", "TYPE", "TRACES", &r->errtype, 0, r->errors);
	fprintf(out, "\ntokens      %14s  %8s  %12s\n", "SUM", "TRACES", "MEAN");
	fprintf(out, "  input     %14.0f  %8llu  %12s\n", r->tok_in.sum, (unsigned long long)r->tok_in.n,
	        mean_text(&r->tok_in, a, sizeof(a)));
	fprintf(out, "  output    %14.0f  %8llu  %12s\n", r->tok_out.sum, (unsigned long long)r->tok_out.n,
	        mean_text(&r->tok_out, a, sizeof(a)));
	fprintf(out, "  total     %14.0f  %8llu  %12s\n", r->tok_total.sum, (unsigned long long)r->tok_total.n,
	        mean_text(&r->tok_total, a, sizeof(a)));
	fprintf(out, "\nlatency (ms)   %8s  %10s  %10s  %10s\n", "TRACES", "P50", "P90", "P99");
	fprintf(out, "  total        %8zu  %10s  %10s  %10s\n", r->lat.len, ms_text(nums_pct(&r->lat, 50), a, sizeof(a)),
	        ms_text(nums_pct(&r->lat, 90), b, sizeof(b)), ms_text(nums_pct(&r->lat, 99), c, sizeof(c)));
	fprintf(out, "  first token  %8zu  %10s  %10s  %10s\n", r->ttft.len, ms_text(nums_pct(&r->ttft, 50), a, sizeof(a)),
	        ms_text(nums_pct(&r->ttft, 90), b, sizeof(b)), ms_text(nums_pct(&r->ttft, 99), c, sizeof(c)));
}

int report_print(struct report *r, FILE *out, int json, const struct report_head *h)
{
	if (r->model.oom || r->tag.oom || r->day.oom || r->errtype.oom || r->lat.oom || r->ttft.oom)
		return -1;
	nums_sort(&r->lat);
	nums_sort(&r->ttft);
	if (json)
		return print_json(r, out, h);
	print_text(r, out, h);
	return 0;
}
