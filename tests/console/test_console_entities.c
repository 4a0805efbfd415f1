/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_console_entities.c - the lists page, an entity's
 * links, the overview, filters (console-api).
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "console_test.h"
#include "vigil.h"

/* Whether the blocked-cards list file has value as a line. */
static bool
blocked_has(const char *value)
{
	char p[400], line[256];
	bool has = false;
	FILE *f;

	snprintf(p, sizeof p, "%s/blocked_cards.txt", rules_dir);
	f = fopen(p, "r");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		has = has || strcmp(line, value) == 0;
	}
	fclose(f);
	return has;
}

/* Who listed value in blocked_cards, as GET /api/lists shows it ("": no
 * record, NULL: not shown). */
static const char *
blocked_who(const char *value, char *buf, size_t len)
{
	json_t *e = list_entry("blocked_cards", value);
	const char *who = e != NULL ? json_string_value(json_object_get(e, "who")) : NULL;

	if (e == NULL)
		return NULL;
	snprintf(buf, len, "%s", who != NULL ? who : "");
	json_decref(e);
	return buf;
}

void
read_bytes(const char *path, char **ret_buf, size_t *ret_len)
{
	FILE *f = fopen(path, "r");
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	assert_non_null(*ret_buf = calloc(1, (size_t)n + 1));
	assert_int_equal(fread(*ret_buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*ret_len = (size_t)n;
}

void
write_bytes(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/*
 * STATE/lists.json that does not load (garbage, truncated JSON, a
 * directory): a save would write it without the records it holds, so
 * every list edit is refused (500, the file and the place: jansson's
 * line:col), its bytes stay as they are and the list files too; the
 * lists are still shown (without who and why, and `records_error`), the
 * rest of the console works, and the log says it once.
 */
static void
lists_records_unloadable(void)
{
	char lj[400], *good = NULL, who[64];
	size_t glen = 0;
	int said = console_log_count("list edits are refused until the file is repaired");

	snprintf(lj, sizeof lj, "%s/lists.json", state);
	read_bytes(lj, &good, &glen);
	for (int i = 0; i < 3; i++) {
		char *now = NULL;
		size_t nlen = 0;
		json_t *o, *w;
		const char *text = i == 0 ? "garbage\n" : good;
		size_t len = i == 0 ? 8 : glen / 2;

		if (i < 2)
			write_bytes(lj, text, len);
		else
			assert_int_equal(unlink(lj) == 0 && mkdir(lj, 0755) == 0, true);
		o = http_ok("POST", "/api/lists/blocked_cards/add", ALICE,
		    "{\"value\":\"c3\",\"reason\":\"stolen\"}", 500);
		w = json_object_get(json_object_get(o, "error"), "where");
		assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"),
		    "code")), "INTERNAL");
		assert_string_equal(json_string_value(json_object_get(w, "file")), lj);
		if (i == 0) {
			assert_string_equal(err_msg(o), "the list records do not parse: '[' or '{' "
			    "expected near 'garbage'");
			assert_int_equal(json_integer_value(json_object_get(w, "line")), 1);
			assert_int_equal(json_integer_value(json_object_get(w, "column")), 7);
		} else if (i == 1) {
			assert_true(strncmp(err_msg(o), "the list records do not parse: ", 31) == 0);
			assert_true(json_integer_value(json_object_get(w, "line")) > 1);
		} else {
			assert_true(strncmp(err_msg(o), "cannot read the list records: ", 30) == 0);
		}
		json_decref(o);
		assert_false(blocked_has("c3"));
		json_decref(http_ok("POST", "/api/lists/blocked_cards/remove", BOB,
		    "{\"value\":\"c6\",\"reason\":\"card found\"}", 500));
		assert_true(blocked_has("c6"));
		o = http_ok("GET", "/api/lists", EVE, NULL, 200);
		assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(o,
		    "records_error"), "where"), "file")), lj);
		json_decref(o);
		assert_true(status_field("scored") > 0);
		if (i < 2) {
			read_bytes(lj, &now, &nlen);
			assert_int_equal(nlen, len);
			assert_memory_equal(now, text, len);
			free(now);
		}
	}
	assert_int_equal(console_log_count("list edits are refused until the file is repaired"),
	    said + 1);
	assert_int_equal(rmdir(lj), 0);
	write_bytes(lj, good, glen);
	assert_string_equal(blocked_who("c6", who, sizeof who), "alice");
	free(good);
}

/*
 * Lists: every list file of the rule file is shown; an entry added with a
 * reason (and who) reaches the file and the audit log, removing it (an
 * unblock) takes it out; an entry with an expiry is taken out by the
 * console once it passes; bad values, unknown lists and past expiries are
 * refused naming the field.
 */
void
test_lists(void **s)
{
	json_t *o, *l, *e;
	char body[256], ex[40], who[64];
	bool found = false;

	(void)s;
	/* a list file that cannot be read: its list carries the shared error
	 * object (docs/tools.md), the others are shown as ever */
	{
		char p[400], saved[420];

		snprintf(p, sizeof p, "%s/test_bins.txt", rules_dir);
		snprintf(saved, sizeof saved, "%s.saved", p);
		assert_int_equal(rename(p, saved), 0);
		copy_file(saved, p);
		assert_int_equal(truncate(p, (off_t)65 << 20), 0); /* sparse, over 64 MiB */
		o = http_ok("GET", "/api/lists", EVE, NULL, 200);
		for (size_t i = 0; i < json_array_size(json_object_get(o, "lists")); i++) {
			json_t *err;

			l = json_array_get(json_object_get(o, "lists"), i);
			err = json_object_get(l, "error");
			if (strcmp(json_string_value(json_object_get(l, "name")), "test_bins") != 0) {
				assert_null(err);
				continue;
			}
			found = true;
			assert_string_equal(json_string_value(json_object_get(err, "code")), "TOO_BIG");
			assert_string_equal(json_string_value(json_object_get(err, "message")),
			    "cannot read the list file: over 64 MiB");
			assert_string_equal(json_string_value(json_object_get(json_object_get(err,
			    "where"), "file")), p);
		}
		assert_true(found);
		found = false;
		json_decref(o);
		assert_int_equal(rename(saved, p), 0);
	}
	o = http_ok("GET", "/api/lists", EVE, NULL, 200);
	for (size_t i = 0; i < json_array_size(json_object_get(o, "lists")); i++) {
		l = json_array_get(json_object_get(o, "lists"), i);
		if (strcmp(json_string_value(json_object_get(l, "name")), "test_bins") == 0)
			assert_string_equal(json_string_value(json_object_get(l, "kind")), "prefix");
		found = found || strcmp(json_string_value(json_object_get(l, "name")),
		    "blocked_cards") == 0;
	}
	assert_true(found);
	json_decref(o);
	/* a prefix list's entry covers a range ("4": a tenth of all cards): a
	 * rule editor's, not an analyst's */
	o = http_ok("POST", "/api/lists/test_bins/add", ALICE, "{\"value\":\"4\",\"reason\":\"y\"}",
	    403);
	assert_string_equal(err_field(o), "list");
	json_decref(o);
	json_decref(http_ok("POST", "/api/lists/test_bins/add", RITA,
	    "{\"value\":\"411199\",\"reason\":\"a compromised BIN\"}", 200));
	json_decref(http_ok("POST", "/api/lists/test_bins/remove", ALICE,
	    "{\"value\":\"411199\",\"reason\":\"y\"}", 403));
	json_decref(http_ok("POST", "/api/lists/test_bins/remove", RITA,
	    "{\"value\":\"411199\",\"reason\":\"BIN reissued\"}", 200));
	json_decref(http_ok("POST", "/api/lists/blocked_cards/add", EVE,
	    "{\"value\":\"c9\",\"reason\":\"stolen\"}", 403));
	o = http_ok("POST", "/api/lists/blocked_cards/add", ALICE,
	    "{\"value\":\"c9\",\"reason\":\"stolen\"}", 200);
	assert_true(json_is_true(json_object_get(o, "changed")));
	json_decref(o);
	assert_true(blocked_has("c9"));
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "list_add");
	assert_string_equal(json_string_value(json_object_get(e, "target")), "blocked_cards:c9");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(e,
	    "after"), "entry"), "reason")), "stolen");
	json_decref(e);
	/* listed again by another analyst: the first record (who, why) stays */
	o = http_ok("POST", "/api/lists/blocked_cards/add", BOB,
	    "{\"value\":\"c9\",\"reason\":\"again\"}", 200);
	assert_true(json_is_false(json_object_get(o, "changed")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "entry"),
	    "reason")), "stolen");
	json_decref(o);
	/* the entry shows who and why */
	assert_string_equal(blocked_who("c9", who, sizeof who), "alice");
	/* unblock */
	json_decref(http_ok("POST", "/api/lists/blocked_cards/remove", BOB,
	    "{\"value\":\"c9\",\"reason\":\"card found\"}", 200));
	assert_false(blocked_has("c9"));
	/* an expiry two seconds ahead: the console takes it out */
	{
		char when[32];
		vigil_time_format_rfc3339(vigil_now_ms() + 2000, when, sizeof when);
		snprintf(ex, sizeof ex, "%s", when);
	}
	snprintf(body, sizeof body, "{\"value\":\"c8\",\"reason\":\"until the call\","
	    "\"expires\":\"%s\"}", ex);
	json_decref(http_ok("POST", "/api/lists/blocked_cards/add", ALICE, body, 200));
	assert_true(blocked_has("c8"));
	for (int i = 0; i < 200 && blocked_has("c8"); i++)
		usleep(50000);
	assert_false(blocked_has("c8"));
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "list_expire");
	json_decref(e);
	/* an end date on an entry listed for good would unblock it when it
	 * passes: 409, the entry stays permanent */
	{
		char later[32];

		vigil_time_format_rfc3339(vigil_now_ms() + 86400000, later, sizeof later);
		json_decref(http_ok("POST", "/api/lists/blocked_cards/add", ALICE,
		    "{\"value\":\"c6\",\"reason\":\"for good\"}", 200));
		snprintf(body, sizeof body, "{\"value\":\"c6\",\"reason\":\"a day\","
		    "\"expires\":\"%s\"}", later);
		http_refused("POST", "/api/lists/blocked_cards/add", ALICE, body, 409, "expires");
		assert_true(blocked_has("c6"));
		/* STATE/lists.json that cannot be written (a directory where its
		 * temporary file goes): nothing half-applied, an entry is not added
		 * without its record (who, why; with an end date it would never
		 * leave), nor an entry removed
		 * whose record would stay (it would come back with the value
		 * listed again) */
		{
			char lj[400], ljtmp[440], bc[400];
			struct stat st0, st1;

			snprintf(lj, sizeof lj, "%s/lists.json", state);
			snprintf(ljtmp, sizeof ljtmp, "%s.tmp-%ld", lj, (long)console_pid);
			assert_int_equal(mkdir(ljtmp, 0755), 0);
			snprintf(body, sizeof body, "{\"value\":\"c5\",\"reason\":\"a day\","
			    "\"expires\":\"%s\"}", later);
			json_decref(http_ok("POST", "/api/lists/blocked_cards/add", ALICE, body, 500));
			assert_false(blocked_has("c5"));
			o = http_ok("POST", "/api/lists/blocked_cards/add", ALICE,
			    "{\"value\":\"c4\",\"reason\":\"for good\"}", 500);
			assert_non_null(strstr(err_msg(o), ": not added (its record could not be kept)"));
			json_decref(o);
			assert_false(blocked_has("c4"));
			e = audit_newest();
			assert_string_not_equal(json_string_value(json_object_get(e, "target")),
			    "blocked_cards:c4");
			json_decref(e);
			/* listed for good already: nothing to write, the record stays */
			o = http_ok("POST", "/api/lists/blocked_cards/add", BOB,
			    "{\"value\":\"c6\",\"reason\":\"again\"}", 200);
			assert_true(json_is_false(json_object_get(o, "changed")));
			json_decref(o);
			assert_true(blocked_has("c6"));
			snprintf(bc, sizeof bc, "%s/blocked_cards.txt", rules_dir);
			assert_int_equal(stat(bc, &st0), 0);
			o = http_ok("POST", "/api/lists/blocked_cards/remove", BOB,
			    "{\"value\":\"c6\",\"reason\":\"card found\"}", 500);
			assert_non_null(strstr(err_msg(o),
			    ": not removed (its record could not be dropped)"));
			json_decref(o);
			assert_int_equal(stat(bc, &st1), 0); /* not rewritten, not even undone */
			assert_true(st1.st_ino == st0.st_ino);
			assert_true(blocked_has("c6"));
			e = audit_newest();
			assert_string_not_equal(json_string_value(json_object_get(e, "action")),
			    "list_remove");
			json_decref(e);
			assert_int_equal(rmdir(ljtmp), 0);
			assert_string_equal(blocked_who("c6", who, sizeof who), "alice");
		}
		lists_records_unloadable();
		json_decref(http_ok("POST", "/api/lists/blocked_cards/remove", ALICE,
		    "{\"value\":\"c6\",\"reason\":\"done\"}", 200));
	}
	/* refusals */
	o = http_ok("POST", "/api/lists/blocked_cards/add", ALICE,
	    "{\"value\":\"a b\",\"reason\":\"x\"}", 400);
	assert_string_equal(err_field(o), "value");
	json_decref(o);
	o = http_ok("POST", "/api/lists/blocked_cards/add", ALICE,
	    "{\"value\":\"c7\",\"reason\":\"x\",\"expires\":\"2020-01-01\"}", 400);
	assert_string_equal(err_field(o), "expires");
	json_decref(o);
	o = http_ok("POST", "/api/lists/nope/add", ALICE, "{\"value\":\"c7\",\"reason\":\"x\"}",
	    404);
	assert_string_equal(err_field(o), "list");
	json_decref(o);
	json_decref(http_ok("POST", "/api/lists/blocked_cards/add", ALICE,
	    "{\"value\":\"c7\"}", 400));
	/* a number list takes numbers only: vigild refuses a list file with
	 * another item, and with it the whole rule file (every later block
	 * went unheard) */
	{
		char saved[420], p[400], line[64] = "";
		FILE *f;

		snprintf(saved, sizeof saved, "%s.saved", rules_path);
		copy_file(rules_path, saved);
		snprintf(p, sizeof p, "%s/test_mcc.txt", rules_dir);
		assert_non_null(f = fopen(p, "w"));
		fputs("6051\n", f);
		fclose(f);
		assert_non_null(f = fopen(rules_path, "a"));
		fputs("\nlist test_mcc = number file \"test_mcc.txt\"\n", f);
		fclose(f);
		http_refused("POST", "/api/lists/test_mcc/add", ALICE,
		    "{\"value\":\"abc\",\"reason\":\"x\"}", 400, "value");
		/* strtod's forms the rule file does not write: vigild refuses them too */
		http_refused("POST", "/api/lists/test_mcc/add", ALICE,
		    "{\"value\":\"0x10\",\"reason\":\"x\"}", 400, "value");
		json_decref(http_ok("POST", "/api/lists/test_mcc/add", ALICE,
		    "{\"value\":\"7995\",\"reason\":\"x\"}", 200));
		assert_non_null(f = fopen(p, "r"));
		assert_non_null(fgets(line, sizeof line, f));
		assert_string_equal(line, "6051\n");
		assert_non_null(fgets(line, sizeof line, f));
		assert_string_equal(line, "7995\n");
		assert_null(fgets(line, sizeof line, f));
		fclose(f);
		assert_int_equal(rename(saved, rules_path), 0);
		unlink(p);
	}
}

/* A transaction scored with a device and an ip, whatever vigild decides. */
static void
score_dev(const char *txn, const char *card, const char *device, const char *ip, int64_t t)
{
	Vigil__V1__Transaction *x = vt_txn(0, txn, card, 4200, t);
	Vigil__V1__Reply *r;

	x->device_id = (char *)device;
	x->ip = (char *)ip;
	r = vt_score(srv.url, x, false);
	assert_non_null(r);
	assert_int_equal(r->status, VIGIL__V1__STATUS__STATUS_OK);
	vigil__v1__reply__free_unpacked(r, NULL);
	last_seq_scored++;
}

static json_t *
linked_card(json_t *o, const char *card)
{
	json_t *cards = json_object_get(json_object_get(o, "linked"), "cards"), *c;
	size_t i;

	json_array_foreach(cards, i, c)
		if (strcmp(json_string_value(json_object_get(c, "card_id")), card) == 0)
			return c;
	return NULL;
}

/*
 * Entity pages: a card's transactions and the cards linked to it through a
 * shared device (c21) or ip (c22), not an unrelated one (c23); a device's
 * and a merchant's; refusals name the field.
 */
void
test_entity(void **s)
{
	int64_t t = base_ms + 4 * VIGIL_MS_PER_DAY; /* 2024-01-05 */
	json_t *o, *tx;

	(void)s;
	score_dev("e1", "c20", "dv1", "10.1.1.1", t);
	score_dev("e2", "c21", "dv1", "10.1.1.2", t + 3600000);
	score_dev("e3", "c22", "dv9", "10.1.1.1", t + 7200000);
	score_dev("e4", "c23", "dv8", "10.9.9.9", t + 10800000);
	score_dev("e5", "c20", "dv1", "10.1.1.1", t + 14400000);
	wait_indexed(last_seq_scored);
	o = http_ok("GET", "/api/entity/card/c20?from=2024-01-05&to=2024-01-06", EVE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "matched")), 2);
	assert_true(json_is_integer(json_object_get(o, "unreadable")));
	assert_int_equal(json_integer_value(json_object_get(o, "unreadable")), 0);
	tx = json_object_get(o, "transactions");
	assert_int_equal(json_array_size(tx), 2);
	/* newest first */
	assert_string_equal(json_string_value(json_object_get(json_array_get(tx, 0), "txn_id")), "e5");
	assert_string_equal(json_string_value(json_object_get(json_array_get(tx, 0), "device_id")),
	    "dv1");
	assert_int_equal(json_array_size(json_object_get(o, "days")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(o, "days"),
	    0), "n")), 2);
	assert_int_equal(json_array_size(json_object_get(json_object_get(o, "linked"), "shared")), 2);
	assert_non_null(linked_card(o, "c20"));
	assert_true(json_is_true(json_object_get(linked_card(o, "c20"), "self")));
	assert_non_null(linked_card(o, "c21"));
	assert_non_null(linked_card(o, "c22"));
	assert_null(linked_card(o, "c23"));
	assert_true(json_is_object(json_object_get(o, "profile")));
	/* by the entity index: c20's 2 records, then dv1's 3 and 10.1.1.1's 3 (e1, e5 once) */
	assert_string_equal(json_string_value(json_object_get(o, "via")), "entity_index");
	assert_int_equal(json_integer_value(json_object_get(o, "scanned")), 2 + 4);
	json_decref(o);
	/* a search by card covers the whole archive by default, and any range */
	o = http_ok("GET", "/api/search?card=c20", EVE, NULL, 200);
	assert_true(json_is_null(json_object_get(o, "from")));
	assert_string_equal(json_string_value(json_object_get(o, "via")), "entity_index");
	assert_int_equal(json_array_size(json_object_get(o, "items")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(o,
	    "items"), 0), "txn_id")), "e1");
	json_decref(o);
	o = http_ok("GET", "/api/search?card=c20&from=2023-01-01&to=2025-01-01", EVE, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(o, "items")), 2);
	assert_true(json_is_false(json_object_get(o, "truncated")));
	json_decref(o);
	/* a device: its cards */
	o = http_ok("GET", "/api/entity/device/dv1?from=2024-01-05&to=2024-01-06", EVE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "matched")), 3);
	assert_non_null(linked_card(o, "c21"));
	assert_null(linked_card(o, "c23"));
	json_decref(o);
	o = http_ok("GET", "/api/entity/ip/10.9.9.9?from=2024-01-05&to=2024-01-06&limit=1", EVE, NULL,
	    200);
	assert_int_equal(json_integer_value(json_object_get(o, "matched")), 1);
	assert_non_null(linked_card(o, "c23"));
	json_decref(o);
	/* another spelling of the address is the same entity (vigil_ip_canonical) */
	o = http_ok("GET", "/api/entity/ip/::FFFF:10.9.9.9?from=2024-01-05&to=2024-01-06", EVE,
	    NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "id")), "10.9.9.9");
	assert_int_equal(json_integer_value(json_object_get(o, "matched")), 1);
	json_decref(o);
	o = http_ok("GET", "/api/search?ip=0:0:0:0:0:ffff:a09:909&from=2024-01-05&to=2024-01-06",
	    EVE, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(o, "items")), 1);
	json_decref(o);
	/* a merchant over the days before: t1..t3 and these; the ring keeps the newest */
	o = http_ok("GET", "/api/entity/merchant/m-test-1?from=2024-01-01&to=2024-01-06&limit=2", EVE,
	    NULL, 200);
	assert_true(json_integer_value(json_object_get(o, "matched")) >= 8);
	assert_int_equal(json_array_size(json_object_get(o, "transactions")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(o,
	    "transactions"), 0), "txn_id")), "e5");
	assert_int_equal(json_array_size(json_object_get(o, "days")), 5);
	json_decref(o);
	/* refusals */
	o = http_ok("GET", "/api/entity/planet/x", EVE, NULL, 404);
	assert_string_equal(err_field(o), "kind");
	json_decref(o);
	o = http_ok("GET", "/api/entity/card/c20?colour=red", EVE, NULL, 400);
	assert_string_equal(err_field(o), "colour");
	json_decref(o);
	o = http_ok("GET", "/api/entity/card/c20?from=2024-01-01&to=2024-03-01", EVE, NULL, 400);
	assert_string_equal(err_field(o), "to");
	json_decref(o);
	o = http_ok("GET", "/api/entity/card/c20?limit=0", EVE, NULL, 400);
	assert_string_equal(err_field(o), "limit");
	json_decref(o);
	json_decref(http_ok("GET", "/api/entity/card", EVE, NULL, 404));
}

/*
 * The overview: per day the index's totals and the alerts' labels; the
 * analysts' labels and the fraud missed on allowed transactions (t1,
 * labelled a chargeback by alice in test_search_label_any) count on the
 * day they were given (today).
 */
void
test_overview(void **s)
{
	json_t *o, *d0, *today;
	char day[32], q[128];
	bool found = false;

	(void)s;
	o = http_ok("GET", "/api/overview?from=2024-01-01&to=2024-01-05", EVE, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(o, "days")), 5);
	assert_true(json_is_integer(json_object_get(o, "unreadable")));
	assert_int_equal(json_integer_value(json_object_get(o, "unreadable")), 0);
	d0 = json_array_get(json_object_get(o, "days"), 0);
	assert_string_equal(json_string_value(json_object_get(d0, "day")), "2024-01-01");
	assert_true(json_integer_value(json_object_get(d0, "scored")) >= 3);
	assert_true(json_integer_value(json_object_get(d0, "alerts")) >= 2);
	assert_true(json_integer_value(json_object_get(d0, "fraud")) +
	    json_integer_value(json_object_get(d0, "legit")) >= 1); /* t2 was labelled */
	json_decref(o);
	vigil_time_format_rfc3339(vigil_now_ms(), day, sizeof day);
	day[10] = '\0';
	snprintf(q, sizeof q, "/api/overview?from=%s&to=%s", day, day);
	o = http_ok("GET", q, EVE, NULL, 200);
	today = json_array_get(json_object_get(o, "days"), 0);
	assert_true(json_integer_value(json_object_get(today, "labels")) >= 1);
	assert_true(json_integer_value(json_object_get(json_object_get(today, "by_analyst"),
	    "alice")) >= 1);
	assert_true(json_integer_value(json_object_get(today, "missed")) >= 1);
	found = json_real_value(json_object_get(json_object_get(today, "missed_money"), "EUR")) >= 1.0;
	assert_true(found);
	json_decref(o);
	o = http_ok("GET", "/api/overview?from=2024-01-01&to=2024-06-01", EVE, NULL, 400);
	assert_string_equal(err_field(o), "to");
	json_decref(o);
	o = http_ok("GET", "/api/overview?from=yesterday", EVE, NULL, 400);
	assert_string_equal(err_field(o), "from");
	json_decref(o);
}

/* Filters that name nothing answer an error, not 0 rows. */
void
test_unknown_filter(void **s)
{
	json_t *o;

	(void)s;
	o = http_ok("GET", "/api/queue?rule=no_such_rule", EVE, NULL, 400);
	assert_string_equal(err_field(o), "rule");
	assert_non_null(strstr(err_msg(o), "no_such_rule"));
	json_decref(o);
	/* a rule of the file that never hit: 0 rows, no error */
	o = http_ok("GET", "/api/queue?rule=device_burst&status=all", EVE, NULL, 200);
	json_decref(o);
}
