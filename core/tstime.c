/* core/tstime.c - clocks and RFC 3339 timestamps with microseconds */
#include "tstime.h"

#include <string.h>
#include <time.h>

int64_t tstime_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t tstime_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t tstime_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* "00" to "99": two digits per table look-up instead of a division each. */
static const char two_digits[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

static void put2(char *o, int v)
{
	memcpy(o, two_digits + 2 * v, 2);
}

size_t tstime_format(int64_t unix_us, char *out)
{
	int64_t secs = unix_us / 1000000, us = unix_us % 1000000;
	if (us < 0) {
		us += 1000000;
		secs--;
	}
	int64_t days = secs / 86400, sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	int64_t y;
	int m, d;
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999)
		y = y < 0 ? 0 : 9999;
	int s = (int)sod, frac = (int)us;
	put2(out, (int)y / 100);
	put2(out + 2, (int)y % 100);
	out[4] = '-';
	put2(out + 5, m);
	out[7] = '-';
	put2(out + 8, d);
	out[10] = 'T';
	put2(out + 11, s / 3600);
	out[13] = ':';
	put2(out + 14, s / 60 % 60);
	out[16] = ':';
	put2(out + 17, s % 60);
	out[19] = '.';
	put2(out + 20, frac / 10000);
	put2(out + 22, frac / 100 % 100);
	put2(out + 24, frac % 100);
	out[26] = 'Z';
	out[27] = '\0';
	return 27;
}

static int digits(const char *s, size_t n, int *v)
{
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		r = r * 10 + (s[i] - '0');
	}
	*v = r;
	return 0;
}

int tstime_parse(const char *s, size_t len, int64_t *unix_us)
{
	int y, mo, d, h, mi, se;
	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
		return -1;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return -1;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -1;
	size_t i = 19;
	int64_t us = 0;
	if (i < len && s[i] == '.') {
		size_t nd = 0;
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (nd < 6)
				us = us * 10 + (s[i] - '0');
			nd++;
			i++;
		}
		if (nd == 0 || nd > 9)
			return -1;
		for (; nd < 6; nd++)
			us *= 10;
	}
	int64_t off = 0;
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		int oh, om;
		if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		off = (int64_t)(oh * 60 + om) * 60 * (s[i] == '+' ? 1 : -1);
		i += 6;
	} else {
		return -1;
	}
	if (i != len)
		return -1;
	if (se == 60)
		se = 59; /* a leap second reads as the second before it */
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
	*unix_us = secs * 1000000 + us;
	return 0;
}

int tstime_parse_arg(const char *s, int64_t *unix_us)
{
	size_t n = strlen(s), nd = strspn(s, "0123456789");
	if (n > 0 && nd == n) {
		if (n > 15)
			return -1;
		int64_t ms = 0;
		for (size_t i = 0; i < n; i++)
			ms = ms * 10 + (s[i] - '0');
		*unix_us = ms * 1000;
		return 0;
	}
	if (n == 10 && s[4] == '-' && s[7] == '-') {
		char full[32];
		memcpy(full, s, 10);
		memcpy(full + 10, "T00:00:00Z", 10);
		return tstime_parse(full, 20, unix_us);
	}
	return tstime_parse(s, n, unix_us);
}
