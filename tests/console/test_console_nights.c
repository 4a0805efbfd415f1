/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_console_nights.c - generations: the rules page's bands
 * in force, a generation rolled back (or forward) through vigild's admin
 * endpoint (console-api).
 */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "gen.h"
#include "genread.h"
#include "console_test.h"
#include "vigil.h"

/* A generation of no card, with one tuned global threshold (thr NULL:
 * none, every threshold falls back, as with no generation). */
static uint64_t
gen_write(const char *thr, double value)
{
	store_genw *w = NULL;
	store_gen_meta meta;
	store_threshold_val v = { .value = value, .previous = NAN, .samples = 9000, .tuned = true };
	store_diag d;

	assert_int_equal(store_genw_begin(srv.datadir, &w, &d), VIGIL_OK);
	if (thr != NULL)
		assert_int_equal(store_genw_put_threshold(w, thr, "", &v), VIGIL_OK);
	memset(&meta, 0, sizeof meta);
	meta.generation = store_genw_generation(w);
	meta.as_of_ms = base_ms;
	meta.window_ms = 90 * VIGIL_MS_PER_DAY;
	meta.built_at_ms = base_ms;
	if (store_genw_commit(w, &meta, 0, &d) != VIGIL_OK)
		fail_msg("genw commit: %s", d.msg);
	return meta.generation;
}

/*
 * The rules page's bands are those in force: a band named by a tuned
 * threshold (review_at) shows the generation's value, the file's number
 * beside it.
 */
void
test_rules_band_in_force(void **s)
{
	uint64_t g = gen_write("review_at", 55);
	json_t *o;

	(void)s;
	o = http_ok("GET", "/api/rules", EVE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "generation")), (json_int_t)g);
	assert_true(json_number_value(json_object_get(o, "review_at")) == 55.0);
	assert_true(json_number_value(json_object_get(o, "file_review_at")) == 40.0);
	assert_true(json_number_value(json_object_get(o, "decline_at")) ==
	    json_number_value(json_object_get(o, "file_decline_at")));
	json_decref(o);
}

/* The generation vigild scores with (a dry run). */
static uint64_t
vigild_generation(void)
{
	Vigil__V1__Reply *r = vt_score(srv.url, vt_txn(2, "g-probe", "c9", 100, base_ms), true);
	uint64_t g;

	assert_non_null(r);
	assert_int_equal(r->status, VIGIL__V1__STATUS__STATUS_OK);
	g = r->score->features_generation;
	vigil__v1__reply__free_unpacked(r, NULL);
	return g;
}

static void
wait_vigild_generation(uint64_t want)
{
	for (int i = 0; i < 100; i++) {
		if (vigild_generation() == want)
			return;
		usleep(50000);
	}
	fail_msg("vigild did not switch to generation %llu", (unsigned long long)want);
}

/*
 * Rolling a generation back from the console: admin only; refused (503)
 * when the console was not given vigild's admin endpoint; the body checked
 * (confirm, the generations); a stale expect_current refused with vigild's
 * 409; then vigild makes the older generation current and switches to it,
 * the console's nights page shows it current, and the audit log has it.
 * The console never writes the data directory: vigild does.
 */
void
test_generation_rollback(void **s)
{
	char path[400], tok[64], eve_tok[64];
	json_t *o;
	uint64_t g1, g2;
	FILE *f;

	(void)s;
	json_decref(http_ok("POST", "/api/generations/current", RITA,
	    "{\"generation\":1,\"expect_current\":2,\"confirm\":true}", 403));
	o = http_ok("POST", "/api/generations/current", ADAM,
	    "{\"generation\":1,\"expect_current\":2,\"confirm\":true}", 503);
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(o, "error"),
	    "message")), "--vigild-admin"));
	json_decref(o);
	/* without vigild's admin endpoint the page is told: no "make current" */
	o = http_ok("GET", "/api/generations", EVE, NULL, 200);
	assert_true(json_is_false(json_object_get(o, "set_current")));
	json_decref(o);

	g1 = gen_write(NULL, 0);
	g2 = gen_write(NULL, 0);
	assert_true(g2 > g1);
	wait_vigild_generation(g2);
	snprintf(path, sizeof path, "%s/vigild.token", tmp);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("console-to-vigild-token-0001\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0644), 0);
	console_stop();
	console_vadmin = true;
	console_start();
	{
		char body[256], fifo[420];

		/* vigild's own rule for the token file: one every user can read
		 * is refused, and so is a FIFO (it would stall the console's
		 * event loop), each with the file named; nothing is sent */
		o = http_ok("GET", "/api/generations", ADAM, NULL, 200);
		snprintf(body, sizeof body, "{\"generation\":%llu,\"expect_current\":%llu,"
		    "\"confirm\":true,\"confirm_token\":\"%s\"}", (unsigned long long)g1,
		    (unsigned long long)g2, json_string_value(json_object_get(o, "confirm_token")));
		json_decref(o);
		o = http_ok("POST", "/api/generations/current", ADAM, body, 502);
		assert_non_null(strstr(json_string_value(json_object_get(json_object_get(o, "error"),
		    "message")), "vigild.token: mode 0644 lets every user read or write it"));
		json_decref(o);
		snprintf(fifo, sizeof fifo, "%s.fifo", path);
		assert_int_equal(rename(path, fifo), 0);
		assert_int_equal(mkfifo(path, 0600), 0);
		o = http_ok("POST", "/api/generations/current", ADAM, body, 502);
		assert_non_null(strstr(json_string_value(json_object_get(json_object_get(o, "error"),
		    "message")), "vigild.token: not a regular file"));
		json_decref(o);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(rename(fifo, path), 0);
		assert_int_equal(chmod(path, 0600), 0);
	}

	/* a generation that does not open is listed with the shared error object */
	snprintf(path, sizeof path, "%s/features/gen-000900", srv.datadir);
	assert_int_equal(mkdir(path, 0755), 0);
	o = http_ok("GET", "/api/generations", EVE, NULL, 200);
	{
		json_t *g0 = json_array_get(json_object_get(o, "generations"), 0), *err;

		assert_int_equal(json_integer_value(json_object_get(g0, "generation")), 900);
		err = json_object_get(g0, "error");
		assert_true(json_is_object(err));
		assert_string_equal(json_string_value(json_object_get(err, "code")), "INVALID");
		assert_true(strlen(json_string_value(json_object_get(err, "message"))) > 0);
	}
	json_decref(o);
	assert_int_equal(rmdir(path), 0);
	o = http_ok("GET", "/api/generations", EVE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "current")), (json_int_t)g2);
	assert_true(json_is_true(json_object_get(o, "set_current")));
	snprintf(eve_tok, sizeof eve_tok, "%s", json_string_value(json_object_get(o,
	    "confirm_token")));
	json_decref(o);
	o = http_ok("GET", "/api/generations", ADAM, NULL, 200);
	snprintf(tok, sizeof tok, "%s", json_string_value(json_object_get(o, "confirm_token")));
	json_decref(o);
	assert_int_equal(strlen(tok), 32);
	assert_string_not_equal(tok, eve_tok); /* one per analyst */
	json_decref(http_ok("POST", "/api/generations/current", ADAM,
	    "{\"generation\":1,\"expect_current\":2}", 400));
	{
		char body[256];

		/* without the analyst's confirm token (another's, or none): 403 */
		snprintf(body, sizeof body, "{\"generation\":%llu,\"expect_current\":%llu,"
		    "\"confirm\":true,\"confirm_token\":\"%s\"}", (unsigned long long)g1,
		    (unsigned long long)g2, eve_tok);
		o = http_ok("POST", "/api/generations/current", ADAM, body, 403);
		assert_string_equal(err_field(o), "confirm_token");
		json_decref(o);
		snprintf(body, sizeof body, "{\"generation\":%llu,\"expect_current\":%llu,"
		    "\"confirm\":true}", (unsigned long long)g1, (unsigned long long)g2);
		json_decref(http_ok("POST", "/api/generations/current", ADAM, body, 403));
		snprintf(body, sizeof body, "{\"generation\":%llu,\"expect_current\":%llu,"
		    "\"confirm\":true,\"confirm_token\":\"%s\"}", (unsigned long long)g1,
		    (unsigned long long)g2 + 5, tok);
		o = http_ok("POST", "/api/generations/current", ADAM, body, 409);
		assert_string_equal(err_field(o),
		    "expect_current");
		/* vigild's code passed on with its status */
		assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"),
		    "code")), "CONFLICT");
		json_decref(o);
		snprintf(body, sizeof body, "{\"generation\":%llu,\"expect_current\":%llu,"
		    "\"confirm\":true, \"force\":1,\"confirm_token\":\"%s\"}",
		    (unsigned long long)g1, (unsigned long long)g2, tok);
		json_decref(http_ok("POST", "/api/generations/current", ADAM, body, 400));
		snprintf(body, sizeof body, "{\"generation\":%llu,\"expect_current\":%llu,"
		    "\"confirm\":true,\"confirm_token\":\"%s\"}", (unsigned long long)g1,
		    (unsigned long long)g2, tok);
		o = http_ok("POST", "/api/generations/current", ADAM, body, 200);
		assert_int_equal(json_integer_value(json_object_get(o, "previous")), (json_int_t)g2);
		assert_int_equal(json_integer_value(json_object_get(o, "current")), (json_int_t)g1);
		json_decref(o);
	}
	wait_vigild_generation(g1);
	o = http_ok("GET", "/api/generations", EVE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "current")), (json_int_t)g1);
	json_decref(o);
	o = http_ok("GET", "/api/audit", ALICE, NULL, 200);
	{
		char *text = json_dumps(o, JSON_COMPACT), want[96];

		assert_non_null(text);
		snprintf(want, sizeof want, "\"who\":\"adam\",\"role\":\"admin\","
		    "\"action\":\"generation_current\"");
		if (strstr(text, want) == NULL)
			fail_msg("no audit line %s in %s", want, text);
		free(text);
	}
	json_decref(o);

	/* with none current (CURRENT removed), the page shows 0 and can still
	 * roll forward: expect_current 0 names "none" and is refused once
	 * one is current again */
	snprintf(path, sizeof path, "%s/features/CURRENT", srv.datadir);
	assert_int_equal(unlink(path), 0);
	o = http_ok("GET", "/api/generations", EVE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "current")), 0);
	json_decref(o);
	{
		char body[256];

		snprintf(body, sizeof body, "{\"generation\":%llu,\"expect_current\":-1,"
		    "\"confirm\":true,\"confirm_token\":\"%s\"}", (unsigned long long)g2, tok);
		o = http_ok("POST", "/api/generations/current", ADAM, body, 400);
		assert_string_equal(err_field(o), "expect_current");
		json_decref(o);
		snprintf(body, sizeof body, "{\"generation\":%llu,\"expect_current\":0,"
		    "\"confirm\":true,\"confirm_token\":\"%s\"}", (unsigned long long)g2, tok);
		o = http_ok("POST", "/api/generations/current", ADAM, body, 200);
		assert_int_equal(json_integer_value(json_object_get(o, "previous")), 0);
		assert_int_equal(json_integer_value(json_object_get(o, "current")), (json_int_t)g2);
		json_decref(o);
		wait_vigild_generation(g2);
		snprintf(body, sizeof body, "{\"generation\":%llu,\"expect_current\":0,"
		    "\"confirm\":true,\"confirm_token\":\"%s\"}", (unsigned long long)g1, tok);
		o = http_ok("POST", "/api/generations/current", ADAM, body, 409);
		assert_string_equal(err_field(o), "expect_current");
		json_decref(o);
	}
}

/* The page's entry of generation g in o (NULL if not listed). */
static json_t *
nights_entry(json_t *o, uint64_t g)
{
	size_t i;
	json_t *e;

	json_array_foreach(json_object_get(o, "generations"), i, e)
		if (json_integer_value(json_object_get(e, "generation")) == (json_int_t)g)
			return e;
	return NULL;
}

/* Flips byte at off of path; returns the byte that was there. */
static int
flip_byte(const char *path, long off)
{
	FILE *f = fopen(path, "r+b");
	int c;

	assert_non_null(f);
	assert_int_equal(fseek(f, off, SEEK_SET), 0);
	c = fgetc(f);
	assert_true(c != EOF);
	assert_int_equal(fseek(f, off, SEEK_SET), 0);
	assert_int_equal(fputc(c ^ 0xff, f), c ^ 0xff);
	assert_int_equal(fclose(f), 0);
	return c;
}

/*
 * The Nights page reads a generation once and keeps its entry, but reads
 * it again when its files change: a data.mdb damaged after the page showed
 * it is then listed with the checksum error, and shown again once mended.
 */
void
test_generations_reread(void **s)
{
	char path[400];
	struct stat st;
	uint64_t g1, g2;
	json_t *o, *o2;
	int c;

	(void)s;
	g1 = gen_write("review_at", 45);
	g2 = gen_write(NULL, 0);
	wait_vigild_generation(g2);
	o = http_ok("GET", "/api/generations", EVE, NULL, 200);
	assert_non_null(nights_entry(o, g1));
	assert_null(json_object_get(nights_entry(o, g1), "error"));
	assert_true(json_is_false(json_object_get(nights_entry(o, g1), "current")));
	assert_true(json_is_true(json_object_get(nights_entry(o, g2), "current")));
	o2 = http_ok("GET", "/api/generations", EVE, NULL, 200); /* unchanged: the same */
	assert_true(json_equal(json_object_get(o, "generations"), json_object_get(o2, "generations")));
	json_decref(o2);
	json_decref(o);

	snprintf(path, sizeof path, "%s/features/gen-%06llu/data.mdb", srv.datadir,
	    (unsigned long long)g1);
	assert_int_equal(stat(path, &st), 0);
	c = flip_byte(path, (long)st.st_size / 2);
	o = http_ok("GET", "/api/generations", EVE, NULL, 200);
	{
		json_t *err = json_object_get(nights_entry(o, g1), "error");
		const char *msg;

		assert_true(json_is_object(err));
		msg = json_string_value(json_object_get(err, "message"));
		assert_non_null(msg);
		if (strstr(msg, "does not match CHECKSUM") == NULL)
			fail_msg("damaged generation %llu: %s", (unsigned long long)g1, msg);
		assert_null(json_object_get(nights_entry(o, g2), "error"));
	}
	json_decref(o);
	assert_int_equal(flip_byte(path, (long)st.st_size / 2), c ^ 0xff);
	o = http_ok("GET", "/api/generations", EVE, NULL, 200);
	assert_null(json_object_get(nights_entry(o, g1), "error"));
	assert_int_equal(json_array_size(json_object_get(nights_entry(o, g1), "thresholds")), 1);
	json_decref(o);
}
