/* producer/loadgen/gen.h - synthetic traces of an LLM RAG service, as trace record v1 */
#ifndef TS_LOADGEN_GEN_H
#define TS_LOADGEN_GEN_H

#include <stdint.h>

#include "sbuf.h"

/* What to generate.  gen_opts_default() fills the defaults. */
struct gen_opts {
	const char *project;  /* the records' project (copied by gen_new) */
	double error_rate;    /* share of traces whose llm_call fails, 0..1 */
	double pii_rate;      /* share of questions with an email or phone number, 0..1 */
	int64_t start_us;     /* start_time of the first trace, Unix microseconds */
	double rate;          /* traces per second: trace i starts at start + i/rate;
	                       * 0: a random gap of 10-200 ms between starts */
};

/* What gen_next() made, for statistics. */
struct gen_info {
	int error;    /* the trace carries an error */
	int pii;      /* the question holds an email address or phone number */
	int unicode;  /* the question is not ASCII */
	int nspans;
	int64_t start_us, end_us; /* the trace's start_time and end_time */
};

struct gen;

/* project "rag-demo", 2 % errors, 10 % personal data, starting now, rate 0. */
void gen_opts_default(struct gen_opts *opts);

/* A generator of the traffic opts describes (opts->project is copied).
 * Everything in trace i (ids, text, sizes, durations, errors) is a pure
 * function of seed, i and the shares in opts; start_us and rate move only the
 * timestamps.  Returns NULL when out of memory. */
struct gen *gen_new(uint64_t seed, const struct gen_opts *opts);

/* Appends the next trace record (one line of JSON, without the newline) to
 * out, and fills *info when info is not NULL.  Returns 0, or -1 when out ran
 * out of memory (out->oom). */
int gen_next(struct gen *g, struct sbuf *out, struct gen_info *info);

/* Frees g.  Accepts NULL. */
void gen_destroy(struct gen *g);

#endif
