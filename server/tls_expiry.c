/* SPDX-License-Identifier: MIT */
/*
 * server/tls_expiry.c - when the TLS material of the scoring socket stops
 * working, seen before it does (docs/security.md, "TLS expiry"). Three
 * dates: the server certificate's end of validity (clients refuse the
 * handshake after it), the CA's (mbedTLS refuses every client certificate
 * chaining to an expired CA) and the CRL's next update (past it, mbedTLS
 * refuses every client certificate of that CA: MBEDTLS_X509_BADCRL_EXPIRED).
 *
 * The dates are read from the files when nng is given them (start-up, a
 * SIGHUP that reloads them): what counts is what is loaded, not what lies
 * on disk. The main thread compares them with the clock every [tls]
 * check_interval_s and logs each change of state (ok, warning within
 * TLSX_WARN_*_DAYS, expired), once; srv_ready, /metrics and the health JSON
 * compare them with the clock on every call, so they are exact to the
 * second whatever the interval.
 */
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "srv.h"

#define TLSX_WARN_CERT_DAYS 30 /* as srv_rep_check_files */
#define TLSX_WARN_CRL_DAYS  7

static const char *const tlsx_names[SRV_TLS_COUNT_] = { "cert", "ca", "crl" };

const char *
srv_tls_item_name(srv_tls_item i)
{
	return (unsigned)i < SRV_TLS_COUNT_ ? tlsx_names[i] : "?";
}

static const char *
tlsx_path(const srv_server *s, srv_tls_item i)
{
	switch (i) {
	case SRV_TLS_CERT: return s->cfg.tls_cert;
	case SRV_TLS_CA:   return s->cfg.tls_ca;
	case SRV_TLS_CRL:  return s->cfg.tls_crl;
	default:           return "";
	}
}

/* Unix ms of t (UTC); 0 if it does not convert. */
static int64_t
tlsx_time_ms(const mbedtls_x509_time *t)
{
	struct tm tm = {
		.tm_year = t->year - 1900, .tm_mon = t->mon - 1, .tm_mday = t->day,
		.tm_hour = t->hour, .tm_min = t->min, .tm_sec = t->sec,
	};
	time_t v;

	if (t->year == 0)
		return 0;
	v = timegm(&tm);
	return v == (time_t)-1 ? 0 : (int64_t)v * 1000;
}

/* The end of validity of the first certificate of path (the one
 * srv_rep_check_files checks); 0 if unreadable. */
static int64_t
tlsx_cert_end(const char *path)
{
	mbedtls_x509_crt crt;
	int64_t end = 0;

	mbedtls_x509_crt_init(&crt);
	if (mbedtls_x509_crt_parse_file(&crt, path) == 0 && crt.raw.len > 0)
		end = tlsx_time_ms(&crt.valid_to);
	mbedtls_x509_crt_free(&crt);
	return end;
}

/* The earliest next update of the lists in path; 0 if unreadable or none
 * has a next update. */
static int64_t
tlsx_crl_next(const char *path)
{
	mbedtls_x509_crl crl;
	int64_t next = 0;

	mbedtls_x509_crl_init(&crl);
	if (mbedtls_x509_crl_parse_file(&crl, path) == 0) {
		for (const mbedtls_x509_crl *l = &crl; l != NULL && l->version != 0; l = l->next) {
			int64_t t = tlsx_time_ms(&l->next_update);

			if (t != 0 && (next == 0 || t < next))
				next = t;
		}
	}
	mbedtls_x509_crl_free(&crl);
	return next;
}

void
srv_tls_expiry_load(srv_server *s)
{
	for (int i = 0; i < SRV_TLS_COUNT_; i++) {
		const char *path = tlsx_path(s, (srv_tls_item)i);
		int64_t t = 0;

		if (path[0] != '\0')
			t = i == SRV_TLS_CRL ? tlsx_crl_next(path) : tlsx_cert_end(path);
		atomic_store(&s->tls_end_ms[i], t);
	}
}

bool
srv_tls_expiry_left(srv_server *s, srv_tls_item i, int64_t now_ms, int64_t *ret_s)
{
	int64_t end = atomic_load(&s->tls_end_ms[i]);
	int64_t d;

	if (end == 0)
		return false;
	d = end - now_ms;
	/* whole seconds, rounded towards the past: 0.5 s left is 0, 0.5 s ago -1 */
	*ret_s = d >= 0 ? d / 1000 : -((-d + 999) / 1000);
	return true;
}

/* What stops working when item i expires, for the log and the health. */
static const char *
tlsx_effect(srv_tls_item i)
{
	switch (i) {
	case SRV_TLS_CERT: return "clients refuse the server's certificate";
	case SRV_TLS_CA:   return "every client certificate of the CA is refused";
	default:           return "every client certificate of the CA is refused (its CRL is "
	                       "out of date)";
	}
}

static void
tlsx_date(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "?");
}

bool
srv_tls_expired(srv_server *s, char *why, size_t len)
{
	int64_t now = vigil_now_ms(), left;
	char when[40];

	for (int i = 0; i < SRV_TLS_COUNT_; i++) {
		if (!srv_tls_expiry_left(s, (srv_tls_item)i, now, &left) || left >= 0)
			continue;
		tlsx_date(atomic_load(&s->tls_end_ms[i]), when, sizeof when);
		snprintf(why, len, "tls: [tls] %s %s %s %s: %s; load a new one (SIGHUP)",
		    tlsx_names[i], tlsx_path(s, (srv_tls_item)i),
		    i == SRV_TLS_CRL ? "past its next update since" : "expired on", when,
		    tlsx_effect((srv_tls_item)i));
		return true;
	}
	return false;
}

void
srv_tls_expiry_check(srv_server *s)
{
	int64_t now = vigil_now_ms(), left;
	char when[40];

	for (int i = 0; i < SRV_TLS_COUNT_; i++) {
		srv_tls_item it = (srv_tls_item)i;
		int64_t warn_s = (int64_t)(it == SRV_TLS_CRL ? TLSX_WARN_CRL_DAYS :
		    TLSX_WARN_CERT_DAYS) * 86400;
		uint8_t state;

		if (!srv_tls_expiry_left(s, it, now, &left)) {
			s->tls_state[i] = 0;
			continue;
		}
		state = left < 0 ? 3 : left < warn_s ? 2 : 1;
		if (state == s->tls_state[i])
			continue;
		tlsx_date(atomic_load(&s->tls_end_ms[i]), when, sizeof when);
		if (state == 3)
			srv_log("tls: error: [tls] %s %s: %s %s: %s; /readyz says 503 until a new one "
			    "is loaded (SIGHUP)", tlsx_names[i], tlsx_path(s, it), i == SRV_TLS_CRL ?
			    "past its next update since" : "expired on", when, tlsx_effect(it));
		else if (state == 2)
			srv_log("tls: warning: [tls] %s %s: %s %s, in %lld s (%lld day(s)): then %s; "
			    "load a new one (SIGHUP) before", tlsx_names[i], tlsx_path(s, it),
			    i == SRV_TLS_CRL ? "next update" : "expires on", when, (long long)left,
			    (long long)(left / 86400), tlsx_effect(it));
		else if (s->tls_state[i] != 0)
			srv_log("tls: [tls] %s %s: ok again, %s %s", tlsx_names[i], tlsx_path(s, it),
			    i == SRV_TLS_CRL ? "next update" : "valid until", when);
		s->tls_state[i] = state;
	}
}
