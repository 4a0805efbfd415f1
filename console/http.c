/* SPDX-License-Identifier: MIT */
/*
 * console/http.c - vigil-console's HTTP side (libevent evhttp, one thread):
 * the web UI's files, Debian's Chart.js, and the JSON API under /api/,
 * one line per endpoint in routes.def (the dispatch, 404, 405 with Allow,
 * 415 and a refused query string all come from that table), where every
 * request needs "Authorization: Bearer TOKEN" (401 without a
 * valid one) and a role at least the route's (403); on a client-certificate
 * session a cross-site request is refused (403), and every POST must say
 * "Content-Type: application/json" (415). Refused authentications are
 * logged with the client's address. Errors are the one error object of
 * docs/tools.md (common/vigil_json.h): {"error": {"code": "...", "message":
 * "...", "where": {"field": "..."}}}. Routes and formats: docs/console.md.
 *
 * Connections are capped by common/evconn.h (DESIGN.md contract 8): at
 * --max-connections the listener stops accepting until one closes, one
 * address may hold --max-connections-per-address of them, a request must be
 * complete within --request-timeout, and a connection stops reading at
 * CON_CONN_BUFFER bytes of unparsed input. A
 * back-test hooks its own close callback there (editor.c). With --https-cert
 * each connection's bufferevent is an OpenSSL one (libevent_openssl),
 * accepting TLS before evhttp reads a byte.
 */
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "console.h"
#include "editor.h"
#include "http.h"
#include "evconn.h"
#include "file.h"
#include "vigil_json.h"

#define CON_BODY_MAX    (2u << 20)
#define CON_CONN_BUFFER (4u << 20) /* unparsed input: a 2 MiB body and its headers */

/* The headers of every answer but evhttp_send_error's HTML pages (evconn
 * adds them to the JSON ones it makes of libevent's own). */
static const char *const http_headers[][2] = {
	{ "X-Content-Type-Options", "nosniff" },
	{ "X-Frame-Options", "DENY" },
	{ "Referrer-Policy", "no-referrer" },
	{ "Cache-Control", "no-store" },
	{ "Content-Security-Policy",
	  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'" },
};

static void
http_common_headers(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	for (size_t i = 0; i < sizeof http_headers / sizeof http_headers[0]; i++)
		evhttp_add_header(h, http_headers[i][0], http_headers[i][1]);
}

void
con_send_json(struct evhttp_request *req, int code, json_t *obj)
{
	http_common_headers(req);
	vigil_evconn_send_json(req, code, NULL, obj,
	    "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"out of memory\"}}\n");
}

/* The error object's code for an HTTP status (docs/tools.md's table). */
static const char *
con_error_code(int http)
{
	switch (http) {
	case 400: case 415: case 422: return "INVALID";
	case 401:           return "UNAUTHENTICATED";
	case 403:           return "FORBIDDEN";
	case 404:           return "NOT_FOUND";
	case 405:           return "METHOD_NOT_ALLOWED";
	case 409:           return "CONFLICT";
	case 413:           return "TOO_BIG";
	case 429:           return "OVERLOADED";
	case 502: case 503: case 504: case 507: return "UNAVAILABLE";
	default:            return "INTERNAL";
	}
}

__attribute__((format(printf, 3, 0))) static json_t *
con_error_vbody(int code, const char *field, const char *fmt, va_list ap)
{
	char msg[512];
	vigil_errinfo ei;

	vsnprintf(msg, sizeof msg, fmt, ap);
	vigil_errinfo_set(&ei, field, "%s", msg);
	return vigil_error_body(con_error_code(code), &ei);
}

json_t *
con_error_body(int code, const char *field, const char *fmt, ...)
{
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	o = con_error_vbody(code, field, fmt, ap);
	va_end(ap);
	return o;
}

void
con_send_error(struct evhttp_request *req, int code, const char *field, const char *fmt, ...)
{
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	o = con_error_vbody(code, field, fmt, ap);
	va_end(ap);
	con_send_json(req, code, o);
}

bool
con_label_expected(struct evhttp_request *req, const json_t *body, int *ret_label)
{
	const json_t *je = json_object_get(body, "expected");
	const char *v = json_string_value(je);

	if (je == NULL || json_is_null(je)) {
		*ret_label = je == NULL ? -2 : -1;
		return true;
	}
	if (v != NULL && (strcmp(v, "fraud") == 0 || strcmp(v, "legit") == 0)) {
		*ret_label = strcmp(v, "fraud") == 0;
		return true;
	}
	con_send_error(req, 400, "expected", "the label you saw: \"fraud\", \"legit\" or null "
	    "(unlabelled)");
	return false;
}

bool
con_label_unchanged(struct evhttp_request *req, int expected, int now_label, const char *source,
    int64_t time_ms)
{
	json_t *jl, *jt, *o;

	if (expected == -2 || expected == now_label)
		return true;
	jl = con_json_label(now_label);
	jt = now_label >= 0 && source != NULL ? con_json_time(time_ms) : json_null();
	if (now_label < 0)
		o = con_error_body(409, "expected", "unlabelled now, not %s",
		    expected == 1 ? "fraud" : "legit");
	else if (source != NULL)
		o = con_error_body(409, "expected", "labelled %s by %s at %s meanwhile",
		    json_string_value(jl), source, json_string_value(jt));
	else
		o = con_error_body(409, "expected", "labelled %s meanwhile", json_string_value(jl));
	json_object_set_new(o, "label", jl);
	json_object_set_new(o, "label_source", now_label >= 0 && source != NULL ?
	    json_string(source) : json_null());
	json_object_set_new(o, "label_time", jt);
	con_send_json(req, 409, o);
	return false;
}

json_t *
con_body_json(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	json_error_t jerr;
	char *buf;
	json_t *o;

	if (n > CON_BODY_MAX) {
		con_send_error(req, 413, NULL, "body of %zu bytes is over the %u-byte limit", n,
		    CON_BODY_MAX);
		return NULL;
	}
	buf = malloc(n + 1);
	if (buf == NULL) {
		con_send_error(req, 500, NULL, "out of memory");
		return NULL;
	}
	evbuffer_remove(in, buf, n);
	buf[n] = '\0';
	/* JSON_DECODE_ANY: "5" is JSON, INVALID below as [1] is, not MALFORMED */
	o = json_loadb(buf, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	free(buf);
	if (o == NULL) {
		vigil_errinfo ei;

		/* the place is where's: the message says what */
		vigil_errinfo_set(&ei, NULL, "%s", jerr.text);
		ei.line = jerr.line > 0 ? (uint32_t)jerr.line : 0;
		ei.col = jerr.line > 0 && jerr.column > 0 ? (uint32_t)jerr.column : 0;
		con_send_json(req, 400, vigil_error_body("MALFORMED", &ei));
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		con_send_error(req, 400, NULL, "body: must be a JSON object");
		return NULL;
	}
	return o;
}

bool
con_range_ok(struct evhttp_request *req, int64_t from_ms, int64_t to_ms)
{
	if (from_ms < to_ms)
		return true;
	con_send_error(req, 400, "to", "from is not before to: the range [from, to) is empty");
	return false;
}

json_t *
con_body_json_keys(struct evhttp_request *req, const char *const *keys)
{
	json_t *o;
	const char *key;
	char known[160];

	if (keys == NULL && evbuffer_get_length(evhttp_request_get_input_buffer(req)) == 0)
		return json_object(); /* no body */
	o = con_body_json(req);
	if (o == NULL)
		return NULL;
	if ((key = vigil_json_unknown_key(o, keys, known, sizeof known)) != NULL) {
		if (keys == NULL || keys[0] == NULL)
			con_send_error(req, 400, key, "unknown key (this endpoint takes no body "
			    "keys)");
		else
			con_send_error(req, 400, key, "unknown key (one of %s)", known);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- static files: a fixed list, nothing else is served ---- */

typedef struct http_file {
	const char *url, *name, *ctype;
	bool        chartjs;
} http_file;

static const http_file http_files[] = {
	{ "/", "index.html", "text/html; charset=utf-8", false },
	{ "/index.html", "index.html", "text/html; charset=utf-8", false },
	{ "/app.js", "app.js", "text/javascript; charset=utf-8", false },
	{ "/style.css", "style.css", "text/css; charset=utf-8", false },
	{ "/rules.js", "rules.js", "text/javascript; charset=utf-8", false },
	{ "/nights.js", "nights.js", "text/javascript; charset=utf-8", false },
	{ "/entity.js", "entity.js", "text/javascript; charset=utf-8", false },
	{ "/overview.js", "overview.js", "text/javascript; charset=utf-8", false },
	{ "/js/chart.js", "chart.umd.js", "text/javascript; charset=utf-8", true },
};

static void
http_static(con_app *app, struct evhttp_request *req, const http_file *f)
{
	char path[4300];
	struct evbuffer *buf;
	struct stat st;
	bool special;
	int fd;

	if (f->chartjs) {
		/* Chart.js 3 ships chart.min.js (UMD), 4 also chart.umd.js */
		snprintf(path, sizeof path, "%s/chart.umd.js", app->o.chartjs);
		if (access(path, R_OK) != 0)
			snprintf(path, sizeof path, "%s/chart.min.js", app->o.chartjs);
	} else {
		snprintf(path, sizeof path, "%s/%s", app->o.www, f->name);
	}
	/* a FIFO in the file's place would block the one event loop */
	fd = vigil_open_regular(path, &special, &st);
	if (fd < 0 && special) {
		fprintf(stderr, "vigil-console: %s: %s is not a regular file\n", f->url, path);
		con_send_error(req, 500, NULL, "%s: the console's file is not a regular file",
		    f->url);
		return;
	}
	if (fd < 0) {
		con_send_error(req, 404, NULL, "%s", f->chartjs ? "Chart.js not found "
		    "(apt-get install libjs-chart.js, or --chartjs DIR)" : "file not found");
		return;
	}
	buf = evbuffer_new();
	if (buf == NULL || evbuffer_add_file(buf, fd, 0, st.st_size) != 0) {
		if (buf != NULL)
			evbuffer_free(buf);
		else
			close(fd);
		con_send_error(req, 500, NULL, "%s: cannot read the file", f->url);
		return;
	}
	http_common_headers(req);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", f->ctype);
	vigil_evconn_send_reply(req, 200, "OK", buf);
	evbuffer_free(buf);
}

/* ---- the API ---- */

/* The subject CN of the verified client certificate of req's connection
 * (HTTPS with --https-client-ca); false (buf "") if none. */
static bool
http_peer_cn(struct evhttp_request *req, char *buf, size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *cert;
	int n;

	buf[0] = '\0';
	if (ssl == NULL)
		return false;
	/* present and verified: with --https-client-ca the handshake refuses a
	 * certificate that does not verify, so one that is here verified */
	cert = SSL_get1_peer_certificate(ssl);
	if (cert == NULL)
		return false;
	n = SSL_get_verify_result(ssl) == X509_V_OK ? X509_NAME_get_text_by_NID(
	    X509_get_subject_name(cert), NID_commonName, buf, (int)len) : -1;
	X509_free(cert);
	if (n <= 0 || (size_t)n >= len || strlen(buf) != (size_t)n) { /* none, cut or NUL inside */
		buf[0] = '\0';
		return false;
	}
	return true;
}

static const con_user *
http_auth(con_app *app, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	char cn[CON_CERT_CN_MAX + 2];

	/* a verified client certificate names the analyst; a connection
	 * without one falls back to the bearer token */
	if (app->ssl != NULL && http_peer_cn(req, cn, sizeof cn))
		return con_auth_cert(&app->auth, cn);

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return con_auth_check(&app->auth, h, strlen(h));
}

/* The client's address, for the log ("?" if unknown). */
static const char *
http_peer(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	return addr != NULL && addr[0] != '\0' ? addr : "?";
}

/*
 * A refusal (an authentication, a connection over the per-address cap),
 * logged with the address it came from: at most one line a second, with
 * the count of those not logged since (a client trying tokens or opening
 * connections must not fill the disk with the log).
 */
static void
http_log_refused(const char *what, const char *addr, const char *why)
{
	static int64_t last_ms;
	static uint64_t quiet;
	int64_t now = vigil_mono_ns() / 1000000;

	if (last_ms != 0 && now - last_ms < 1000) {
		quiet++;
		return;
	}
	fprintf(stderr, "vigil-console: refused %s from %s: %s (%llu more not logged in the last "
	    "second)\n", what, addr, why, (unsigned long long)quiet);
	last_ms = now;
	quiet = 0;
}

static void
http_conn_addr_cap(void *arg, const char *addr)
{
	con_app *app = arg;
	char why[96];

	snprintf(why, sizeof why, "%u connections from one address already open "
	    "(--max-connections-per-address)", app->o.max_per_addr);
	http_log_refused("a connection", addr, why);
}

/*
 * A browser attaches a client certificate to every request to this origin,
 * whichever page makes it: on a certificate session a request another site's
 * page made would act as the analyst. Refused: a Sec-Fetch-Site other than
 * same-origin or none (typed in the address bar), and an Origin that is not
 * this server's own ("https://" and the Host header). A bearer token is not
 * sent by a browser on its own, so token sessions need neither.
 */
static bool
http_cross_site(struct evhttp_request *req, char *why, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *site = evhttp_find_header(h, "Sec-Fetch-Site");
	const char *origin = evhttp_find_header(h, "Origin");
	const char *host = evhttp_find_header(h, "Host");
	char self[300];

	if (site != NULL && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0) {
		snprintf(why, len, "Sec-Fetch-Site: %.64s", site);
		return true;
	}
	if (origin == NULL)
		return false;
	snprintf(self, sizeof self, "https://%.256s", host != NULL ? host : "");
	if (host == NULL || strcasecmp(origin, self) != 0) {
		snprintf(why, len, "Origin: %.200s", origin);
		return true;
	}
	return false;
}

/* A POST's body must be declared JSON: a page of another site can send
 * text/plain or a form without asking first, never application/json. */
static bool
http_json_type(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return false;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static bool
http_need(struct evhttp_request *req, const con_user *u, con_role role)
{
	if (u->role >= role)
		return true;
	con_send_error(req, 403, NULL, "%s is %s; this needs the role %s or above", u->name,
	    con_role_name(u->role), con_role_name(role));
	return false;
}

/* ---- the API: one table of routes (routes.def) ---- */

enum { HTTP_M_GET = 1, HTTP_M_POST = 2 }; /* a route's methods; GET answers HEAD too */

#define HTTP_ARGS_MAX 2

/* The {name} segments of a route's path, decoded, in order. */
typedef struct http_args {
	char        v[HTTP_ARGS_MAX][VIGIL_ID_MAX + 1];
	const char *last; /* the route's last segment: "claim", "add" */
} http_args;

typedef void http_fn(con_app *app, struct evhttp_request *req, const con_user *who);
typedef void http_args_fn(con_app *app, struct evhttp_request *req, const con_user *who,
    const http_args *a);

typedef struct http_route {
	const char   *path;    /* segments, {name} for a parameter */
	unsigned      methods; /* HTTP_M_* */
	con_role      role;    /* at least */
	bool          query;   /* reads a query string (a POST never does) */
	http_fn      *fn;      /* one of the two */
	http_args_fn *fn_args;
} http_route;

static void
http_me(con_app *app, struct evhttp_request *req, const con_user *who)
{
	(void)app;
	con_send_json(req, 200, json_pack("{s:s, s:s}", "name", who->name, "role",
	    con_role_name(who->role)));
}

static void
http_case(con_app *app, struct evhttp_request *req, const con_user *who, const http_args *a)
{
	con_api_case(app, req, who, a->v[0]);
}

static void
http_case_action(con_app *app, struct evhttp_request *req, const con_user *who,
    const http_args *a)
{
	con_api_case_action(app, req, who, a->v[0], a->last);
}

static void
http_list_edit(con_app *app, struct evhttp_request *req, const con_user *who, const http_args *a)
{
	con_api_list_edit(app, req, who, a->v[0], a->last);
}

static void
http_entity(con_app *app, struct evhttp_request *req, const con_user *who, const http_args *a)
{
	con_api_entity(app, req, who, a->v[0], a->v[1]);
}

static void
http_txn_label(con_app *app, struct evhttp_request *req, const con_user *who, const http_args *a)
{
	con_api_txn_label(app, req, who, a->v[0]);
}

static void
http_rules_versions(con_app *app, struct evhttp_request *req, const con_user *who)
{
	con_api_rules_versions(app, req, who, NULL);
}

static void
http_rules_version(con_app *app, struct evhttp_request *req, const con_user *who,
    const http_args *a)
{
	con_api_rules_versions(app, req, who, a->v[0]);
}

static const http_route http_routes[] = {
#define ROUTE(m, path, role, query, fn) \
	{ path, HTTP_M_##m, CON_ROLE_##role, query, fn, NULL },
#define ROUTE_ARGS(m, path, role, query, fn) \
	{ path, HTTP_M_##m, CON_ROLE_##role, query, NULL, fn },
#include "routes.def"
#undef ROUTE
#undef ROUTE_ARGS
};

#define HTTP_NROUTES (sizeof http_routes / sizeof http_routes[0])

/* A {name} segment's value: seg[0..len) decoded from %XX, an id
 * (vigil_id_chars_ok: "a%2Fb" is "a/b", "a%20b" is none). */
static bool
http_arg_decode(const char *seg, size_t len, char *out, size_t outlen)
{
	char enc[3 * VIGIL_ID_MAX + 1];
	size_t n = 0;
	char *dec;
	bool ok;

	if (len == 0 || len >= sizeof enc)
		return false;
	memcpy(enc, seg, len);
	enc[len] = '\0';
	dec = evhttp_uridecode(enc, 0, &n);
	if (dec == NULL)
		return false;
	ok = n > 0 && n < outlen && strlen(dec) == n && vigil_id_chars_ok(dec, n);
	if (ok)
		memcpy(out, dec, n + 1);
	free(dec);
	return ok;
}

/* What a path is to one route. */
typedef enum http_fit {
	HTTP_FIT_NONE = 0, /* another path */
	HTTP_FIT_BAD_ARG,  /* the route's shape, with a {name} segment that is no id */
	HTTP_FIT,
} http_fit;

/*
 * Matches path against r->path segment by segment: a literal one byte for
 * byte, a {name} one any non-empty segment. HTTP_FIT: *a holds the
 * parameters. HTTP_FIT_BAD_ARG: the first that is no id is named in
 * bad[0..badlen).
 */
static http_fit
http_route_fit(const http_route *r, const char *path, http_args *a, char *bad, size_t badlen)
{
	const char *p = r->path, *q = path;
	size_t pl, ql, n = 0;
	bool ok = true;

	while (*p == '/' && *q == '/') {
		p++;
		q++;
		pl = strcspn(p, "/");
		ql = strcspn(q, "/");
		if (p[0] == '{') {
			if (ql == 0 || n == HTTP_ARGS_MAX)
				return HTTP_FIT_NONE;
			if (ok && !http_arg_decode(q, ql, a->v[n], sizeof a->v[n])) {
				snprintf(bad, badlen, "%.*s", (int)(pl - 2), p + 1);
				ok = false;
			}
			n++;
		} else if (pl != ql || memcmp(p, q, pl) != 0) {
			return HTTP_FIT_NONE;
		}
		p += pl;
		q += ql;
	}
	if (*p != '\0' || *q != '\0')
		return HTTP_FIT_NONE;
	a->last = strrchr(r->path, '/') + 1;
	return ok ? HTTP_FIT : HTTP_FIT_BAD_ARG;
}

/* An Allow header's value for HTTP_M_* bits. */
static const char *
http_allow(unsigned methods)
{
	switch (methods) {
	case HTTP_M_GET:  return "GET, HEAD";
	case HTTP_M_POST: return "POST";
	default:          return "GET, HEAD, POST";
	}
}

/* 405 naming the method path answers (allow), with the Allow header. */
static void
http_not_allowed(struct evhttp_request *req, const char *path, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	con_send_error(req, 405, NULL, "%s answers %s only", path, allow);
}

/* 404, naming the routes that start as path does up to its third '/'
 * ("/api/cases/t2/explode": GET /api/cases/{txn_id}, POST ...). */
static void
http_not_found(struct evhttp_request *req, const char *path)
{
	const char *sl = strchr(path + 5, '/');
	size_t pre = sl != NULL ? (size_t)(sl - path) + 1 : 0, n = 0;
	char known[400] = "";

	for (size_t i = 0; i < HTTP_NROUTES && pre > 0 && n < sizeof known; i++)
		if (strncmp(http_routes[i].path, path, pre) == 0)
			n += (size_t)snprintf(known + n, sizeof known - n, "%s%s %s", n > 0 ? ", " : "",
			    http_routes[i].methods == HTTP_M_POST ? "POST" : "GET",
			    http_routes[i].path);
	if (n == 0)
		con_send_error(req, 404, NULL, "no such endpoint: %s", path);
	else
		con_send_error(req, 404, NULL, "no such endpoint: %s (under %.*s: %s)", path, (int)pre,
		    path, known);
}

/*
 * Every /api/ request, in this order: 401 without a user, 403 for a
 * cross-site request on a certificate session, 404 for no route (or a
 * {name} that is no id), 405 for a method no route of the path takes, 415
 * for a POST not typed JSON, 400 for a query string on a route that reads
 * none, 403 below the route's role; then its handler.
 */
static void
http_api(con_app *app, struct evhttp_request *req, const char *path, enum evhttp_cmd_type cmd)
{
	const con_user *u = http_auth(app, req);
	unsigned m = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD ? HTTP_M_GET :
	    cmd == EVHTTP_REQ_POST ? HTTP_M_POST : 0;
	const http_route *r = NULL;
	unsigned allow = 0;
	http_args a, cur;
	char why[300], bad[32], qkey[64];

	if (u == NULL) {
		http_log_refused(path, http_peer(req), "401 missing or unknown token or certificate");
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		    "Bearer realm=\"vigil-console\"");
		con_send_error(req, 401, NULL, "missing or unknown token (Authorization: Bearer TOKEN)");
		return;
	}
	if (u->by_cert && http_cross_site(req, why, sizeof why)) {
		http_log_refused(path, http_peer(req), "403 cross-site request on a certificate session");
		con_send_error(req, 403, NULL, "cross-site request refused (%s): a client certificate "
		    "acts only for this console's own pages", why);
		return;
	}
	for (size_t i = 0; i < HTTP_NROUTES; i++) {
		switch (http_route_fit(&http_routes[i], path, &cur, bad, sizeof bad)) {
		case HTTP_FIT_NONE:
			break;
		case HTTP_FIT_BAD_ARG:
			con_send_error(req, 404, bad, "not a %s: 1 to %d bytes of printable ASCII, no "
			    "space, quote, comma or backslash", bad, VIGIL_ID_MAX);
			return;
		case HTTP_FIT:
			allow |= http_routes[i].methods;
			if ((http_routes[i].methods & m) != 0) {
				r = &http_routes[i];
				a = cur;
			}
			break;
		}
	}
	if (allow == 0) {
		http_not_found(req, path);
		return;
	}
	if (r == NULL) {
		http_not_allowed(req, path, http_allow(allow));
		return;
	}
	if (m == HTTP_M_POST && !http_json_type(req)) {
		con_send_error(req, 415, NULL, "a POST needs \"Content-Type: application/json\"");
		return;
	}
	if (!r->query && vigil_evconn_query(req, qkey, sizeof qkey) != NULL) {
		con_send_error(req, 400, qkey, "%s takes no query string", path);
		return;
	}
	if (!http_need(req, u, r->role))
		return;
	if (r->fn != NULL)
		r->fn(app, req, u);
	else
		r->fn_args(app, req, u, &a);
}

static void
http_dispatch(struct evhttp_request *req, void *arg)
{
	con_app *app = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	vigil_evconn_seen(app->conns, req); /* the next request's deadline starts */
	if (path == NULL)
		path = "/";
	if (strncmp(path, "/api/", 5) == 0) {
		http_api(app, req, path, cmd);
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		/* no token: says only whether the index keeps up, nothing of the data */
		bool ok = app->last_ingest_err[0] == '\0';
		json_t *err = NULL;
		vigil_errinfo ei;

		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
			http_not_allowed(req, path, "GET, HEAD");
			return;
		}

		if (!ok) { /* docs/tools.md, "JSON errors" */
			vigil_errinfo_set(&ei, NULL, "%s", app->last_ingest_err);
			err = vigil_error_json("UNAVAILABLE", &ei);
		}
		con_send_json(req, ok ? 200 : 503, json_pack("{s:b, s:o*, s:i}", "ok", ok, "error",
		    err, "connections", (int)vigil_evconn_count(app->conns)));
		return;
	}
	if (strcmp(path, "/favicon.ico") == 0) {
		evhttp_send_reply(req, 204, "No Content", NULL);
		return;
	}
	for (size_t i = 0; i < sizeof http_files / sizeof http_files[0]; i++) {
		if (strcmp(path, http_files[i].url) == 0) {
			if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
				http_not_allowed(req, path, "GET, HEAD");
			else
				http_static(app, req, &http_files[i]);
			return;
		}
	}
	con_send_error(req, 404, NULL, "no page %s (the console serves /, its files and "
	    "/api/...)", path);
}

/* The error object replacing libevent's own page of status (evconn.h). */
static json_t *
http_page_body(void *arg, int status, const char *code, const char *message)
{
	vigil_errinfo ei;
	char msg[96];

	(void)arg;
	if (status == 413) {
		snprintf(msg, sizeof msg, "the request body is over the %u-byte limit (2 MiB)",
		    CON_BODY_MAX);
		message = msg;
	}
	vigil_errinfo_set(&ei, NULL, "%s", message);
	return vigil_error_body(code, &ei);
}

vigil_err
con_http_start(con_app *app, char *errbuf, size_t errlen)
{
	char host[64], cause[160], hdrs[512];
	struct evhttp_bound_socket *bound;
	vigil_evconn_opts o = { 0 };
	uint16_t port;
	vigil_err rv;

	if (!vigil_cli_hostport(app->o.listen, host, sizeof host, &port)) {
		snprintf(errbuf, errlen, "--listen %s: expected HOST:PORT", app->o.listen);
		return VIGIL_EINVAL;
	}
	app->http = evhttp_new(app->base);
	if (app->http == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return VIGIL_ENOMEM;
	}
	evhttp_set_max_headers_size(app->http, 16384);
	/* a request must be complete --request-timeout seconds after the
	 * connection opened or its previous request (evconn.h: idle and slow
	 * clients alike); this one is evhttp's limit on a silent socket while a
	 * reply is written; a back-test's connection gets longer (editor.c) */
	evhttp_set_timeout(app->http, 60);
	/* the API answers other methods 405 (with Allow); libevent answers
	 * the rest 501, made our error object by evconn */
	evhttp_set_allowed_methods(app->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(app->http, http_dispatch, app);
	bound = vigil_evconn_bind(app->base, app->http, host, port, cause, sizeof cause);
	if (bound == NULL) {
		snprintf(errbuf, errlen, "--listen %s: cannot listen: %s", app->o.listen, cause);
		return VIGIL_EBUSY;
	}
	o.max_conns = app->o.max_connections;
	o.max_input = CON_CONN_BUFFER;
	o.idle_s = app->o.request_timeout_s;
	o.max_per_addr = app->o.max_per_addr;
	o.on_addr_cap = http_conn_addr_cap;
	o.arg = app;
	if (app->ssl != NULL) {
		o.bev_new = vigil_evconn_ssl_bev;
		o.bev_arg = app->ssl;
	}
	/* a body over CON_BODY_MAX: libevent refuses it unread; that answer
	 * and libevent's others are made our error objects (evconn.h) */
	o.max_body = CON_BODY_MAX;
	o.page_body = http_page_body;
	for (size_t i = 0, n = 0; i < sizeof http_headers / sizeof http_headers[0]; i++)
		n += (size_t)snprintf(hdrs + n, sizeof hdrs - n, "%s: %s\r\n", http_headers[i][0],
		    http_headers[i][1]);
	o.page_headers = hdrs;
	rv = vigil_evconn_set_new(app->http, evhttp_bound_socket_get_listener(bound), &o,
	    &app->conns);
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "out of memory");
		return VIGIL_ENOMEM;
	}
	return VIGIL_OK;
}

void
con_http_stop(con_app *app)
{
	vigil_evconn_set_stop(app->conns);
	if (app->http != NULL)
		evhttp_free(app->http);
	app->http = NULL;
	vigil_evconn_set_free(app->conns);
	app->conns = NULL;
}

bool
con_query_parse(struct evhttp_request *req, struct evkeyvalq *kv)
{
	const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	const struct evkeyval *e, *f;

	TAILQ_INIT(kv);
	if (qs != NULL && evhttp_parse_query_str(qs, kv) != 0) {
		con_send_error(req, 400, NULL, "query string does not parse");
		return false;
	}
	TAILQ_FOREACH(e, kv, next) {
		for (f = TAILQ_FIRST(kv); f != e; f = TAILQ_NEXT(f, next)) {
			if (strcmp(e->key, f->key) == 0) {
				con_send_error(req, 400, e->key, "given twice");
				evhttp_clear_headers(kv);
				return false;
			}
		}
	}
	return true;
}

bool
con_query_uint(const char *v, unsigned long min, unsigned long max, uint32_t *ret)
{
	unsigned long n;
	char *end;

	if (!isdigit((unsigned char)v[0]) || strlen(v) > 9)
		return false;
	n = strtoul(v, &end, 10);
	if (*end != '\0' || n < min || n > max || n > UINT32_MAX)
		return false;
	*ret = (uint32_t)n;
	return true;
}

con_qs
con_query_walk(struct evhttp_request *req, int64_t *from_ms, int64_t *to_ms, bool *ret_from,
    con_qs (*fn)(void *arg, const char *k, const char *v), void *arg, char *bad, size_t badlen,
    char *val, size_t vallen)
{
	struct evkeyvalq kv;
	struct evkeyval *e;
	con_qs r = CON_QS_OK;

	*ret_from = false;
	if (!con_query_parse(req, &kv))
		return CON_QS_REPLIED;
	TAILQ_FOREACH(e, &kv, next) {
		if (strcmp(e->key, "from") == 0) {
			*ret_from = true;
			if (con_time_parse(e->value, from_ms) != VIGIL_OK)
				r = CON_QS_BAD_VALUE;
		} else if (strcmp(e->key, "to") == 0) {
			if (con_time_parse(e->value, to_ms) != VIGIL_OK)
				r = CON_QS_BAD_VALUE;
		} else {
			r = fn(arg, e->key, e->value);
		}
		if (r != CON_QS_OK) {
			snprintf(bad, badlen, "%s", e->key);
			snprintf(val, vallen, "%s", e->value);
			break;
		}
	}
	evhttp_clear_headers(&kv);
	return r;
}
