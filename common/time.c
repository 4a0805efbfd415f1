/* SPDX-License-Identifier: MIT */
/*
 * common/time.c - UTC date/time parsing and formatting (days-from-civil
 * arithmetic, so no dependence on the TZ environment or timegm), clocks, a
 * call bounded in time, and great-circle distance.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigil.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void
civil_from_days(int64_t z, int *ret_y, unsigned *ret_m, unsigned *ret_d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const int64_t y = (int64_t)yoe + era * 400;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	const unsigned d = doy - (153 * mp + 2) / 5 + 1;
	const unsigned m = mp < 10 ? mp + 3 : mp - 9;
	*ret_y = (int)(y + (m <= 2));
	*ret_m = m;
	*ret_d = d;
}

static int
days_in_month(int y, unsigned m)
{
	static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

/* Reads exactly n digits at *p; advances. */
static int
read_digits(const char **p, int n, int *ret)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*ret = v;
	return 0;
}

static vigil_err
parse_date_part(const char **p, int *y, int *mo, int *d)
{
	if (read_digits(p, 4, y) != 0 || **p != '-')
		return VIGIL_EINVAL;
	(*p)++;
	if (read_digits(p, 2, mo) != 0 || **p != '-')
		return VIGIL_EINVAL;
	(*p)++;
	if (read_digits(p, 2, d) != 0)
		return VIGIL_EINVAL;
	if (*mo < 1 || *mo > 12 || *d < 1 || *d > days_in_month(*y, (unsigned)*mo))
		return VIGIL_EINVAL;
	return VIGIL_OK;
}

vigil_err
vigil_date_parse(const char *s, int64_t *ret_ms)
{
	int y, mo, d;
	const char *p = s;

	if (s == NULL || parse_date_part(&p, &y, &mo, &d) != VIGIL_OK || *p != '\0')
		return VIGIL_EINVAL;
	*ret_ms = days_from_civil(y, (unsigned)mo, (unsigned)d) * VIGIL_MS_PER_DAY;
	return VIGIL_OK;
}

vigil_err
vigil_time_parse_rfc3339(const char *s, int64_t *ret_ms)
{
	int y, mo, d, hh, mm, ss, frac_ms = 0, off_min = 0;
	const char *p = s;

	if (s == NULL || parse_date_part(&p, &y, &mo, &d) != VIGIL_OK)
		return VIGIL_EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return VIGIL_EINVAL;
	p++;
	if (read_digits(&p, 2, &hh) != 0 || *p++ != ':' || read_digits(&p, 2, &mm) != 0 ||
	    *p++ != ':' || read_digits(&p, 2, &ss) != 0)
		return VIGIL_EINVAL;
	if (hh > 23 || mm > 59 || ss > 60) /* 60: a leap second, folded into :59 */
		return VIGIL_EINVAL;
	if (ss == 60)
		ss = 59;
	if (*p == '.') {
		int scale = 100, n = 0;
		p++;
		while (*p >= '0' && *p <= '9') {
			if (n < 3)
				frac_ms += (*p - '0') * scale;
			scale /= 10;
			n++;
			p++;
			if (n > 9)
				return VIGIL_EINVAL;
		}
		if (n == 0)
			return VIGIL_EINVAL;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (read_digits(&p, 2, &oh) != 0 || *p++ != ':' || read_digits(&p, 2, &om) != 0 ||
		    oh > 23 || om > 59)
			return VIGIL_EINVAL;
		off_min = sign * (oh * 60 + om);
	} else {
		return VIGIL_EINVAL;
	}
	if (*p != '\0')
		return VIGIL_EINVAL;
	*ret_ms = days_from_civil(y, (unsigned)mo, (unsigned)d) * VIGIL_MS_PER_DAY +
	    ((int64_t)hh * 3600 + mm * 60 + ss - (int64_t)off_min * 60) * 1000 + frac_ms;
	return VIGIL_OK;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

void
vigil_time_format_rfc3339(int64_t ms, char *buf, size_t buflen)
{
	int64_t days = floor_div(ms, VIGIL_MS_PER_DAY);
	int64_t rem = ms - days * VIGIL_MS_PER_DAY;
	int y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	snprintf(buf, buflen, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d,
	    (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
	    (int)(rem % 1000));
}

void
vigil_date_format(int64_t ms, char *buf, size_t buflen)
{
	int y;
	unsigned m, d;

	civil_from_days(floor_div(ms, VIGIL_MS_PER_DAY), &y, &m, &d);
	snprintf(buf, buflen, "%04d-%02u-%02u", y, m, d);
}

int64_t
vigil_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
vigil_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double
vigil_haversine_km(double lat1, double lon1, double lat2, double lon2)
{
	const double r = 6371.0088; /* mean Earth radius, km */
	const double rad = M_PI / 180.0;
	double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
	double a = sin(dlat / 2) * sin(dlat / 2) +
	    cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
	if (a > 1.0)
		a = 1.0;
	return 2 * r * asin(sqrt(a));
}

void
vigil_deadline_after(clockid_t clk, struct timespec *ret, uint64_t ms)
{
	clock_gettime(clk, ret);
	ret->tv_sec += (time_t)(ms / 1000);
	ret->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ret->tv_nsec >= 1000000000L) {
		ret->tv_sec++;
		ret->tv_nsec -= 1000000000L;
	}
}

/* A bounded call's state: freed by whichever of the caller and the thread
 * is last, the caller when it saw fn return, the thread when it was
 * abandoned. */
typedef struct bounded {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	void          (*fn)(void *);
	void           *arg;
	bool            done, abandoned;
} bounded;

static void
bounded_free(bounded *b)
{
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

static void *
bounded_main(void *p)
{
	bounded *b = p;
	bool abandoned;

	b->fn(b->arg);
	pthread_mutex_lock(&b->mu);
	b->done = true;
	abandoned = b->abandoned;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (abandoned)
		bounded_free(b);
	return NULL;
}

bool
vigil_call_bounded(void (*fn)(void *), void *arg, int ms)
{
	struct timespec deadline;
	bounded *b = calloc(1, sizeof *b);
	pthread_t t;
	bool done;

	if (b == NULL || pthread_mutex_init(&b->mu, NULL) != 0) {
		free(b);
		fn(arg);
		return true;
	}
	pthread_cond_init(&b->cv, NULL);
	b->fn = fn;
	b->arg = arg;
	if (pthread_create(&t, NULL, bounded_main, b) != 0) {
		bounded_free(b);
		fn(arg);
		return true;
	}
	vigil_deadline_after(CLOCK_REALTIME, &deadline, ms > 0 ? (uint64_t)ms : 0);
	pthread_mutex_lock(&b->mu);
	while (!b->done)
		if (pthread_cond_timedwait(&b->cv, &b->mu, &deadline) == ETIMEDOUT)
			break;
	done = b->done;
	b->abandoned = !done;
	pthread_mutex_unlock(&b->mu);
	if (!done) {
		pthread_detach(t);
		return false;
	}
	pthread_join(t, NULL);
	bounded_free(b);
	return true;
}
