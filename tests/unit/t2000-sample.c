/* tests/unit/t2000-sample.c - the sampling decision: pure, uniform, seed-dependent */
#include <math.h>

#include "sample.h"
#include "test.h"

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t next(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void random_id(char out[33])
{
	snprintf(out, 33, "%016llx%016llx", (unsigned long long)next(), (unsigned long long)next());
}

/* Known answers: docs/sampling.md quotes these so that another implementation
 * can check itself. */
static void known_answers(void)
{
	double a = sample_draw(0, "0af7651916cd43dd8448eb211c80319c");
	double b = sample_draw(42, "0af7651916cd43dd8448eb211c80319c");
	double c = sample_draw(42, "00000000000000000000000000000001");
	t_note("draw(0, 0af7...319c) = %.17g; draw(42, 0af7...319c) = %.17g; draw(42, 0...01) = %.17g", a, b, c);
	CHECK(fabs(a - 0.49592287796419776) < 1e-15, "draw(0, ...) = %.17g", a);
	CHECK(fabs(b - 0.77942553273099202) < 1e-15, "draw(42, ...) = %.17g", b);
	CHECK(fabs(c - 0.37478177785763322) < 1e-15, "draw(42, 0..1) = %.17g", c);
	CHECK(sample_draw(0, "0AF7651916CD43DD8448EB211C80319C") == a, "hex case does not matter");
}

static void pure_and_in_range(void)
{
	char id[33];
	for (int i = 0; i < 10000; i++) {
		random_id(id);
		double d = sample_draw(7, id);
		CHECK(d >= 0 && d < 1, "draw %g out of [0,1)", d);
		CHECK(sample_draw(7, id) == d, "not pure");
	}
	CHECK(sample_draw(7, "xyz") == -1, "short id");
	CHECK(sample_draw(7, "0af7651916cd43dd8448eb211c80319g") == -1, "not hex");
	CHECK(sample_draw(7, NULL) == -1, "NULL");
	CHECK(!sample_selected(0.0, 0.0), "rate 0 selects nothing");
	CHECK(sample_selected(0.999999, 1.0), "rate 1 selects everything");
	CHECK(!sample_selected(-1, 1.0), "invalid never selected");
}

/* Chi-square over 100 buckets of 200,000 draws; 99 degrees of freedom, the
 * 0.001 critical value is 148.23. */
static void uniform(void)
{
	enum { N = 200000, K = 100 };
	static int bucket[K];
	char id[33];
	for (int i = 0; i < N; i++) {
		random_id(id);
		bucket[(int)(sample_draw(12345, id) * K)]++;
	}
	double chi = 0, e = (double)N / K;
	for (int k = 0; k < K; k++)
		chi += (bucket[k] - e) * (bucket[k] - e) / e;
	t_note("chi-square %.1f over %d buckets", chi, K);
	CHECK(chi < 148.23, "chi-square %.1f", chi);

	/* sequential ids (a bad generator) must still spread */
	int sel = 0;
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "%032x", i + 1);
		sel += sample_selected(sample_draw(1, id), 0.2);
	}
	double sigma = sqrt(N * 0.2 * 0.8);
	CHECK(fabs(sel - N * 0.2) < 4 * sigma, "sequential ids: %d selected of %d at 0.2", sel, N);
}

static void seed_changes_selection(void)
{
	enum { N = 100000 };
	char id[33];
	int a = 0, b = 0, both = 0;
	for (int i = 0; i < N; i++) {
		random_id(id);
		int x = sample_selected(sample_draw(1, id), 0.3), y = sample_selected(sample_draw(2, id), 0.3);
		a += x;
		b += y;
		both += x && y;
	}
	/* independent seeds: the overlap is about 0.3 * 0.3 of all */
	double sigma = sqrt(N * 0.09 * 0.91);
	CHECK(fabs(both - N * 0.09) < 4 * sigma, "overlap %d, expected about %d", both, N * 9 / 100);
	CHECK(a != b || both != a, "seeds select the same set");
}

int main(void)
{
	RUN(known_answers);
	RUN(pure_and_in_range);
	RUN(uniform);
	RUN(seed_changes_selection);
	TEST_EXIT();
}
