/* core/sample.h - the sampling decision: a pure function of (seed, trace_id, rate) */
#ifndef TS_SAMPLE_H
#define TS_SAMPLE_H

#include <stdint.h>

/* splitmix64's finalizer: a bijection on 64 bits in which every input bit
 * flips each output bit with probability about one half.  The draw is built
 * on it; others (the Opik item ids) use it as a hash step. */
uint64_t sample_mix64(uint64_t x);

/* The draw of a trace: a number in [0, 1) that depends only on seed and the
 * trace id (32 lowercase hex characters), uniform over trace ids.  See
 * docs/sampling.md for the exact function, so that others can recompute it.
 * Returns -1 when trace_id is not 32 hex characters. */
double sample_draw(uint64_t seed, const char *trace_id);

/* Whether a trace with this draw is selected at rate (in [0, 1]):
 * draw < rate, so rate 0 selects nothing and rate 1 everything. */
static inline int sample_selected(double draw, double rate)
{
	return draw >= 0 && draw < rate;
}

#endif
