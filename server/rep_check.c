/* SPDX-License-Identifier: MIT */
/*
 * server/rep_check.c - the checks of what the nng side's configuration
 * names outside itself (srv_rep_check_files, srv.h): the TLS certificate,
 * key, CA and CRL files, read with mbedTLS directly (the library nng's TLS
 * is built on; nng would find a bad pair only at the first handshake), and
 * ipc_group. Run by --check-config and at start-up. Then the TLS
 * configuration of the listeners (srv_rep_tls_config, at start and at a
 * SIGHUP: rep.c, srv_rep_tls_reload), made from one read of the files
 * that it checks the same way.
 */
#include <errno.h>
#include <grp.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "file.h"
#include "srv.h"

#define REP_CERT_WARN_DAYS 30
#define REP_PEM_MAX   (1u << 20)

/* mbedTLS's message for rv, for one line. */
static void
rep_mbed_err(int rv, char *buf, size_t len)
{
	mbedtls_strerror(rv, buf, len);
}

/*
 * The whole of file path (at most REP_PEM_MAX bytes), NUL-terminated, in
 * *ret_len bytes before the NUL: to free (explicit_bzero first if it holds
 * a key). NULL with "WHAT PATH: cannot open: REASON", "...: not a regular
 * file" or "...: larger than 1 MiB" in reason. These files are read at
 * start and at a SIGHUP reload, on vigild's main thread: each is opened
 * once, as a regular file (a FIFO in its place is refused, not waited on),
 * and mbedTLS and nng parse what was read, never the file by name.
 */
static char *
rep_read_file(const char *what, const char *path, size_t *ret_len, char *reason, size_t rlen)
{
	bool special = false;
	char why[128], *buf;

	if (vigil_read_regular(path, REP_PEM_MAX, &buf, ret_len, &special) != 0) {
		snprintf(reason, rlen, "%s %s: %s", what, path, !special && errno == EFBIG ?
		    "larger than 1 MiB" : vigil_open_why(special, errno, why, sizeof why));
		return NULL;
	}
	return buf;
}

/*
 * rep_read_file of a file that must be PEM: nng's TLS configuration takes
 * PEM text only, so a DER file, which mbedTLS alone would accept, is
 * refused here as at start. The length for mbedTLS's *_parse is returned
 * in *ret_len: with the terminating NUL, which is how mbedTLS tells PEM.
 */
static char *
rep_read_pem_file(const char *what, const char *path, size_t *ret_len, char *reason,
    size_t rlen)
{
	char *buf = rep_read_file(what, path, ret_len, reason, rlen);

	if (buf != NULL && strstr(buf, "-----BEGIN ") == NULL) {
		snprintf(reason, rlen, "%s %s: not a PEM file (no \"-----BEGIN\" line; "
		    "DER converts with openssl -outform PEM)", what, path);
		explicit_bzero(buf, *ret_len);
		free(buf);
		return NULL;
	}
	if (buf != NULL)
		(*ret_len)++;
	return buf;
}

/* Parses the PEM certificate (chain) buf[0..n) (n with the NUL) read from
 * path; false with reason if it cannot. */
static bool
rep_cert_parse(const char *what, const char *path, const char *buf, size_t n,
    mbedtls_x509_crt *crt, char *reason, size_t rlen)
{
	char e[160];
	int rv = mbedtls_x509_crt_parse(crt, (const unsigned char *)buf, n);

	if (rv != 0) {
		rep_mbed_err(rv, e, sizeof e);
		snprintf(reason, rlen, "%s %s: %s (%s)", what, path, rv > 0 ?
		    "some certificates in it are not valid X.509" :
		    "not a PEM X.509 certificate", e);
		return false;
	}
	return true;
}

static void
rep_cert_dates(const char *what, const char *path, const mbedtls_x509_crt *crt,
    FILE *warn, char *reason, size_t rlen, bool *ok)
{
	const mbedtls_x509_time *to = &crt->valid_to;
	struct tm tm = { 0 };
	time_t end, now = time(NULL);

	*ok = true;
	if (mbedtls_x509_time_is_future(&crt->valid_from)) {
		snprintf(reason, rlen, "%s %s: not valid before %04d-%02d-%02d %02d:%02d:%02d UTC",
		    what, path, crt->valid_from.year, crt->valid_from.mon, crt->valid_from.day,
		    crt->valid_from.hour, crt->valid_from.min, crt->valid_from.sec);
		*ok = false;
		return;
	}
	if (mbedtls_x509_time_is_past(to)) {
		snprintf(reason, rlen, "%s %s: expired on %04d-%02d-%02d %02d:%02d:%02d UTC", what,
		    path, to->year, to->mon, to->day, to->hour, to->min, to->sec);
		*ok = false;
		return;
	}
	tm.tm_year = to->year - 1900;
	tm.tm_mon = to->mon - 1;
	tm.tm_mday = to->day;
	tm.tm_hour = to->hour;
	tm.tm_min = to->min;
	tm.tm_sec = to->sec;
	end = timegm(&tm);
	if (warn != NULL && end != (time_t)-1 && end - now < REP_CERT_WARN_DAYS * 86400)
		fprintf(warn, "vigild: warning: %s %s expires on %04d-%02d-%02d (in %lld day(s))\n",
		    what, path, to->year, to->mon, to->day, (long long)((end - now) / 86400));
}

/*
 * The revocation list(s) buf[0..n) read from path: parsed, issued by a CA
 * in ca, and not past their next update. mbedTLS refuses every client
 * certificate of a CA whose CRL is out of date (MBEDTLS_X509_BADCRL_EXPIRED), so an expired
 * list would lock every client out: refused here, warned about 7 days
 * ahead.
 */
static bool
rep_crl_check(const char *path, const char *buf, size_t n, mbedtls_x509_crt *ca, FILE *warn,
    char *reason, size_t rlen)
{
	mbedtls_x509_crl crl;
	char e[160];
	bool ok = false;
	int rv;

	mbedtls_x509_crl_init(&crl);
	rv = mbedtls_x509_crl_parse(&crl, (const unsigned char *)buf, n);
	if (rv != 0) {
		rep_mbed_err(rv, e, sizeof e);
		snprintf(reason, rlen, "[tls] crl %s: not a PEM certificate revocation list "
		    "(%s)", path, e);
		goto out;
	}
	for (const mbedtls_x509_crl *l = &crl; l != NULL && l->version != 0; l = l->next) {
		const mbedtls_x509_time *nu = &l->next_update;
		bool issuer = false;

		for (const mbedtls_x509_crt *c = ca; c != NULL && c->raw.len > 0; c = c->next)
			if (c->subject_raw.len == l->issuer_raw.len &&
			    memcmp(c->subject_raw.p, l->issuer_raw.p, l->issuer_raw.len) == 0)
				issuer = true;
		if (!issuer) {
			snprintf(reason, rlen, "[tls] crl %s: issued by none of the CAs of [tls] ca",
			    path);
			goto out;
		}
		if (nu->year != 0 && mbedtls_x509_time_is_past(nu)) {
			snprintf(reason, rlen, "[tls] crl %s: out of date since %04d-%02d-%02d "
			    "%02d:%02d:%02d UTC (its next update): every client certificate would be "
			    "refused; publish a new one", path, nu->year, nu->mon, nu->day, nu->hour,
			    nu->min, nu->sec);
			goto out;
		}
		if (warn != NULL && nu->year != 0) {
			struct tm tm = { .tm_year = nu->year - 1900, .tm_mon = nu->mon - 1,
				.tm_mday = nu->day, .tm_hour = nu->hour, .tm_min = nu->min,
				.tm_sec = nu->sec };
			time_t end = timegm(&tm);

			if (end != (time_t)-1 && end - time(NULL) < 7 * 86400)
				fprintf(warn, "vigild: warning: [tls] crl %s is due for its next update on "
				    "%04d-%02d-%02d: past it every client certificate is refused\n",
				    path, nu->year, nu->mon, nu->day);
		}
	}
	ok = true;
out:
	mbedtls_x509_crl_free(&crl);
	return ok;
}

/* The [tls] files, each read once: what is checked is what nng is given. */
typedef struct rep_tls_files {
	char  *cert, *key, *ca, *crl; /* PEM text, NUL-terminated; NULL: not configured */
	size_t ncert, nkey, nca, ncrl; /* lengths with the NUL, as mbedTLS takes PEM */
} rep_tls_files;

static void
rep_tls_files_free(rep_tls_files *f)
{
	if (f->key != NULL)
		explicit_bzero(f->key, f->nkey);
	free(f->key);
	free(f->cert);
	free(f->ca);
	free(f->crl);
	memset(f, 0, sizeof *f);
}

/* Reads every configured [tls] file; false with the one line in errbuf. */
static bool
rep_tls_files_read(const srv_config *c, rep_tls_files *f, char *errbuf, size_t errlen)
{
	memset(f, 0, sizeof *f);
	if (c->tls_cert[0] != '\0' &&
	    ((f->cert = rep_read_pem_file("[tls] cert", c->tls_cert, &f->ncert, errbuf,
	    errlen)) == NULL ||
	    (f->key = rep_read_pem_file("[tls] key", c->tls_key, &f->nkey, errbuf,
	    errlen)) == NULL))
		goto fail;
	if (c->tls_ca[0] != '\0' &&
	    (f->ca = rep_read_pem_file("[tls] ca", c->tls_ca, &f->nca, errbuf, errlen)) == NULL)
		goto fail;
	if (c->tls_ca[0] != '\0' && c->tls_crl[0] != '\0' &&
	    (f->crl = rep_read_pem_file("[tls] crl", c->tls_crl, &f->ncrl, errbuf,
	    errlen)) == NULL)
		goto fail;
	return true;
fail:
	rep_tls_files_free(f);
	return false;
}

/*
 * The checks of what f holds: the certificate and CA parse and are within
 * their validity, the key is the certificate's (nng would take a
 * mismatched pair and fail every handshake), the CRL is the CA's and up to
 * date. Warnings to warn (may be NULL).
 */
static bool
rep_tls_files_check(const srv_config *c, const rep_tls_files *f, FILE *warn, char *errbuf,
    size_t errlen)
{
	mbedtls_x509_crt crt, ca;
	mbedtls_pk_context key;
	bool ok = false, dates;
	char e[160];
	int mrv;

	mbedtls_x509_crt_init(&crt);
	mbedtls_x509_crt_init(&ca);
	mbedtls_pk_init(&key);
	if (f->cert != NULL) {
		if (!rep_cert_parse("[tls] cert", c->tls_cert, f->cert, f->ncert, &crt, errbuf,
		    errlen))
			goto out;
		rep_cert_dates("[tls] cert", c->tls_cert, &crt, warn, errbuf, errlen, &dates);
		if (!dates)
			goto out;
		mrv = mbedtls_pk_parse_key(&key, (const unsigned char *)f->key, f->nkey, NULL, 0);
		if (mrv != 0) {
			rep_mbed_err(mrv, e, sizeof e);
			snprintf(errbuf, errlen, "[tls] key %s: not an unencrypted PEM private "
			    "key (%s)", c->tls_key, e);
			goto out;
		}
		if (mbedtls_pk_check_pair(&crt.pk, &key) != 0) {
			snprintf(errbuf, errlen, "[tls] key %s is not the key of [tls] cert %s",
			    c->tls_key, c->tls_cert);
			goto out;
		}
	}
	if (f->ca != NULL) {
		if (!rep_cert_parse("[tls] ca", c->tls_ca, f->ca, f->nca, &ca, errbuf, errlen))
			goto out;
		rep_cert_dates("[tls] ca", c->tls_ca, &ca, warn, errbuf, errlen, &dates);
		if (!dates)
			goto out;
		if (f->crl != NULL &&
		    !rep_crl_check(c->tls_crl, f->crl, f->ncrl, &ca, warn, errbuf, errlen))
			goto out;
	}
	ok = true;
out:
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
	mbedtls_pk_free(&key);
	return ok;
}

vigil_err
srv_rep_check_files(const srv_config *c, FILE *warn, char *errbuf, size_t errlen)
{
	rep_tls_files f;
	bool ok;

	if (!rep_tls_files_read(c, &f, errbuf, errlen))
		return VIGIL_EINVAL;
	ok = rep_tls_files_check(c, &f, warn, errbuf, errlen);
	rep_tls_files_free(&f);
	if (!ok)
		return VIGIL_EINVAL;
	if (c->ipc_group[0] != '\0' && getgrnam(c->ipc_group) == NULL) {
		char *end;

		errno = 0;
		(void)strtoul(c->ipc_group, &end, 10);
		if (*end != '\0' || end == c->ipc_group) {
			snprintf(errbuf, errlen, "[server] ipc_group %s: no such group", c->ipc_group);
			return VIGIL_EINVAL;
		}
	}
	return VIGIL_OK;
}

/*
 * The server TLS configuration of tls+tcp:// listeners: TLS 1.2 (what
 * Debian's mbedTLS 2.28 offers), our certificate and key, and with a CA a
 * client certificate signed by it is required (mutual TLS); without one any
 * client may connect (encrypted, not authenticated: main warns). Each file
 * is read once, checked (rep_tls_files_check) and given to nng from that
 * one read, so a file replaced meanwhile cannot bypass the checks.
 */
vigil_err
srv_rep_tls_config(const srv_config *cfg, FILE *warn, nng_tls_config **ret_tls, char *errbuf,
    size_t errlen)
{
	nng_tls_config *tls = NULL;
	rep_tls_files f;
	vigil_err rv = VIGIL_EINVAL;
	int nrv;

	if (cfg->tls_cert[0] == '\0') {
		snprintf(errbuf, errlen, "tls: a tls+tcp:// listener needs [tls] cert and key");
		return VIGIL_EINVAL;
	}
	if (!rep_tls_files_read(cfg, &f, errbuf, errlen))
		return VIGIL_EINVAL;
	if (!rep_tls_files_check(cfg, &f, warn, errbuf, errlen))
		goto out;
	if ((nrv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_SERVER)) != 0) {
		snprintf(errbuf, errlen, "tls: %s", nng_strerror(nrv));
		rv = nrv == NNG_ENOTSUP ? VIGIL_EINVAL : VIGIL_ENOMEM;
		goto out;
	}
	if ((nrv = nng_tls_config_version(tls, NNG_TLS_1_2, NNG_TLS_1_2)) != 0 ||
	    (nrv = nng_tls_config_own_cert(tls, f.cert, f.key, NULL)) != 0) {
		snprintf(errbuf, errlen, "tls: cert %s, key %s: %s", cfg->tls_cert, cfg->tls_key,
		    nng_strerror(nrv));
		goto out;
	}
	if (f.ca != NULL) {
		/* the CA and its revocation list together (f.crl NULL: none) */
		if ((nrv = nng_tls_config_ca_chain(tls, f.ca, f.crl)) != 0) {
			if (f.crl != NULL)
				snprintf(errbuf, errlen, "tls: ca %s, crl %s: %s", cfg->tls_ca,
				    cfg->tls_crl, nng_strerror(nrv));
			else
				snprintf(errbuf, errlen, "tls: ca %s: %s", cfg->tls_ca,
				    nng_strerror(nrv));
			goto out;
		}
		nrv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_REQUIRED);
	} else {
		nrv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_NONE);
	}
	if (nrv != 0) {
		snprintf(errbuf, errlen, "tls: auth mode: %s", nng_strerror(nrv));
		goto out;
	}
	*ret_tls = tls;
	tls = NULL;
	rv = VIGIL_OK;
out:
	rep_tls_files_free(&f);
	if (tls != NULL)
		nng_tls_config_free(tls);
	return rv;
}
