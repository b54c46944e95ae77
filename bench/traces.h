/* bench/traces.h - a realistic 5-span RAG trace of a chosen size, built through the public API
 *
 * The root (a chat request) has four children: retrieve (retrieval), rerank
 * (tool), llm_call (llm, with model, usage and time to first token) and
 * guardrail (tool), and llm_call has one child, format (general): five spans
 * besides the root.  Text comes from a word list and a per-trace random
 * state, so records differ from each other and compress like prose.  pad
 * bytes of text are spread over the retrieved documents, the prompt and the
 * answer; traces_calibrate() finds the pad that gives a record of a wanted
 * size.
 */
#ifndef TS_BENCH_TRACES_H
#define TS_BENCH_TRACES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/internal.h"
#include "tracesift.h"

static const char *const traces_words[] = {
	"the", "cluster", "service", "request", "latency", "token", "model", "answer",
	"context", "document", "deploy", "region", "replica", "policy", "storage", "quota",
	"limit", "scale", "memory", "network", "ingress", "secret", "volume", "rollout",
	"metric", "alert", "budget", "invoice", "account", "project", "permission", "audit",
	"when", "which", "after", "before", "usually", "never", "always", "within",
	"minutes", "hours", "daily", "weekly", "restart", "upgrade", "backup", "restore",
	"is", "are", "can", "must", "should", "will", "of", "to", "in", "for", "with", "a",
	"and", "or", "not", "every",
};

static inline uint64_t traces_rand(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Writes about n bytes of words (at least one) to out (size n + 16). */
static inline void traces_text(char *out, size_t n, uint64_t *s)
{
	size_t len = 0;
	do {
		const char *w = traces_words[traces_rand(s) % (sizeof(traces_words) / sizeof(traces_words[0]))];
		size_t wl = strlen(w);
		if (len)
			out[len++] = ' ';
		memcpy(out + len, w, wl);
		len += wl;
	} while (len < n);
	out[len] = '\0';
}

/* One trace's text, made by traces_prepare() before the trace is built, so
 * that building calls nothing but the library. */
struct traces_buf {
	char *question, *question_json, *docs_json, *prompt_json, *answer;
	size_t cap;
};

static inline void traces_buf_init(struct traces_buf *tb, size_t pad)
{
	tb->cap = pad + 256;
	tb->question = malloc(256);
	tb->question_json = malloc(300);
	tb->docs_json = malloc(tb->cap + 128);
	tb->prompt_json = malloc(tb->cap + 128);
	tb->answer = malloc(tb->cap + 16);
	if (!tb->question || !tb->question_json || !tb->docs_json || !tb->prompt_json || !tb->answer) {
		fprintf(stderr, "%% ERROR: out of memory\n");
		exit(1);
	}
}

static inline void traces_buf_release(struct traces_buf *tb)
{
	free(tb->question);
	free(tb->question_json);
	free(tb->docs_json);
	free(tb->prompt_json);
	free(tb->answer);
}

/* Makes the text of trace number seq with pad bytes of text. */
static inline void traces_prepare(struct traces_buf *tb, size_t pad, uint64_t seq)
{
	uint64_t s = seq * 7919 + 1;
	size_t docs = pad / 2, prompt = pad / 4, answer = pad - docs - prompt;
	char *tmp = tb->answer; /* scratch until the answer is written last */
	traces_text(tb->question, 40, &s);
	snprintf(tb->question_json, 300, "{\"question\":\"%s?\"}", tb->question);
	int n = snprintf(tb->docs_json, tb->cap + 128, "[{\"id\":\"doc-17\",\"text\":\"");
	traces_text(tmp, docs / 2 + 1, &s);
	n += snprintf(tb->docs_json + n, tb->cap + 128 - (size_t)n, "%s\"},{\"id\":\"doc-42\",\"text\":\"", tmp);
	traces_text(tmp, docs - docs / 2 + 1, &s);
	snprintf(tb->docs_json + n, tb->cap + 128 - (size_t)n, "%s\"}]", tmp);
	traces_text(tmp, prompt + 1, &s);
	snprintf(tb->prompt_json, tb->cap + 128, "[{\"role\":\"user\",\"content\":\"%s\"}]", tmp);
	traces_text(tb->answer, answer + 1, &s);
}

/* Builds (begins, fills, ends the spans of) a trace from prepared text: a
 * service's own calls to the library and nothing else.  The caller ends or
 * abandons it.  Exits when out of memory. */
static inline ts_trace_t *traces_build_prepared(ts_client_t *c, const struct traces_buf *tb, size_t pad)
{
	ts_trace_t *t = ts_trace_begin(c, "chat_request");
	if (!t) {
		fprintf(stderr, "%% ERROR: ts_trace_begin failed\n");
		exit(1);
	}
	ts_span_t *root = ts_trace_root(t);
	ts_span_set_input_json(root, tb->question_json);
	ts_span_add_tag(root, "bench");
	ts_span_set_metadata(root, "user_id", "u-1234");

	ts_span_t *ret = ts_span_begin(t, NULL, "retrieve", TS_SPAN_RETRIEVAL);
	ts_span_set_input(ret, tb->question);
	ts_span_set_output_json(ret, tb->docs_json);
	ts_span_end(ret);

	ts_span_t *rr = ts_span_begin(t, NULL, "rerank", TS_SPAN_TOOL);
	ts_span_set_output_json(rr, "[\"doc-42\",\"doc-17\"]");
	ts_span_end(rr);

	ts_span_t *llm = ts_span_begin(t, NULL, "llm_call", TS_SPAN_LLM);
	ts_span_set_input_json(llm, tb->prompt_json);
	ts_span_set_model(llm, "gpt-4o-mini");
	ts_span_set_usage(llm, (int64_t)(pad / 16), (int64_t)(pad / 32));
	ts_span_set_ttft_ms(llm, 123.5);
	ts_span_t *fmt = ts_span_begin(t, llm, "format", TS_SPAN_GENERAL);
	ts_span_end(fmt);
	ts_span_set_output(llm, tb->answer);
	ts_span_end(llm);

	ts_span_t *g = ts_span_begin(t, NULL, "guardrail", TS_SPAN_TOOL);
	ts_span_set_output_json(g, "{\"flagged\":false}");
	ts_span_end(g);

	ts_span_set_output(root, tb->answer);
	return t;
}

/* traces_prepare() then traces_build_prepared(). */
static inline ts_trace_t *traces_build(ts_client_t *c, struct traces_buf *tb, size_t pad, uint64_t seq)
{
	traces_prepare(tb, pad, seq);
	return traces_build_prepared(c, tb, pad);
}

/* The size of the record that traces_build(pad) gives (about). */
static inline size_t traces_size(ts_client_t *c, size_t pad)
{
	struct traces_buf tb;
	traces_buf_init(&tb, pad);
	size_t total = 0;
	for (int i = 0; i < 8; i++) {
		ts_trace_t *t = traces_build(c, &tb, pad, (uint64_t)i);
		size_t len = 0;
		char *rec = trace_render(t, &len);
		free(rec);
		ts_trace_abandon(t);
		total += len;
	}
	traces_buf_release(&tb);
	return total / 8;
}

/* The pad for a record of about want bytes (0 when even pad 0 is larger). */
static inline size_t traces_calibrate(ts_client_t *c, size_t want)
{
	size_t base = traces_size(c, 0);
	if (want <= base)
		return 0;
	size_t at4k = traces_size(c, 4096);
	double per = (double)(at4k - base) / 4096.0;
	size_t pad = (size_t)((double)(want - base) / per);
	for (int i = 0; i < 4; i++) {
		size_t got = traces_size(c, pad);
		pad = (size_t)((double)pad + ((double)want - (double)got) / per);
	}
	return pad;
}

#endif
