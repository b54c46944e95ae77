/* core/sample.c - the sampling decision: a pure function of (seed, trace_id, rate) */
#include "sample.h"

uint64_t sample_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static int hex_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' :
		        c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		        c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

double sample_draw(uint64_t seed, const char *trace_id)
{
	uint64_t hi, lo;
	if (!trace_id || hex_u64(trace_id, &hi) || hex_u64(trace_id + 16, &lo))
		return -1;
	uint64_t h = sample_mix64(seed + 0x9e3779b97f4a7c15ULL);
	h = sample_mix64(h ^ hi);
	h = sample_mix64(h ^ lo);
	return (double)(h >> 11) * 0x1.0p-53;
}
