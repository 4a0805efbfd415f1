/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_ids.c - txn_id idempotency under concurrency and
 * durability (docs/storage.md, "Idempotency"):
 *   - the same txn_id begun for two cards at once is scored once, the other
 *     begin gets VIGIL_ECONFLICT (deterministic, and 2000 racing pairs);
 *   - with fsync always, a transaction is found as a duplicate only once its
 *     record is durable: a retry of one whose fdatasync failed is never
 *     answered with its outcome, but scored and written again (not counted
 *     twice, live or after a reopen); the failed attempt's live effect is
 *     taken back, so the retry does not count itself; a retry while the
 *     sync runs waits for it. fdatasync fails through the LD_PRELOAD shim of tests/store_archive
 *     (fault_shim.c), which meson preloads for this test.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include "helpers.h"

typedef struct fx {
	char        *dir;
	char         fault[4200];
	store_db    *db;
	store_ctx   *a, *b;
	vigil_value  f[256];
} fx;

static store_db *
db_open(const char *dir, store_fsync policy)
{
	store_db_opts o;
	store_db     *db = NULL;
	store_diag    d = { .msg = "" };
	vigil_err     rv;

	store_db_opts_default(&o);
	o.archive.fsync = policy;
	rv = store_db_open(dir, &o, &db, NULL, &d);
	if (rv != VIGIL_OK)
		fail_msg("store_db_open: %s: %s", vigil_strerror(rv), d.msg);
	return db;
}

static int
setup_policy(void **state, store_fsync policy)
{
	fx *f = calloc(1, sizeof *f);

	f->dir = tmpdir_new();
	snprintf(f->fault, sizeof f->fault, "%s/fault", f->dir);
	assert_int_equal(mkdir(f->fault, 0700), 0);
	setenv("VIGIL_FAULT_DIR", f->fault, 1);
	f->db = db_open(f->dir, policy);
	f->a = store_ctx_new(f->db);
	f->b = store_ctx_new(f->db);
	assert_non_null(f->a);
	assert_non_null(f->b);
	*state = f;
	return 0;
}

static int
setup_never(void **state)
{
	return setup_policy(state, STORE_FSYNC_NEVER);
}

static int
setup_always(void **state)
{
	return setup_policy(state, STORE_FSYNC_ALWAYS);
}

static int
teardown(void **state)
{
	fx *f = *state;

	unsetenv("VIGIL_FAULT_DIR");
	store_ctx_free(f->a);
	store_ctx_free(f->b);
	store_db_close(f->db);
	tmpdir_free(f->dir);
	free(f);
	return 0;
}

static void
flag(fx *f, const char *name, const char *content)
{
	char p[4400];

	snprintf(p, sizeof p, "%s/%s", f->fault, name);
	if (content != NULL) {
		FILE *fp = fopen(p, "w");

		assert_non_null(fp);
		fputs(content, fp);
		fclose(fp);
	} else {
		unlink(p);
	}
}

static bool
shim_loaded(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, "fault-shim") != NULL;
}

/* Scored records per txn_id in the archive: how many have this one. */
static unsigned
archived(const char *datadir, const char *txn_id)
{
	char          dir[4200];
	store_reader *rd = NULL;
	store_record  r;
	store_diag    d;
	store_scored *s = malloc(sizeof *s);
	unsigned      n = 0;

	snprintf(dir, sizeof dir, "%s/archive", datadir);
	assert_int_equal(store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d), VIGIL_OK);
	while (store_reader_next(rd, &r, &d) == VIGIL_OK) {
		if (r.type != STORE_REC_SCORE)
			continue;
		assert_int_equal(store_scored_decode(r.payload, r.len, s, &d), VIGIL_OK);
		if (strcmp(s->txn.txn_id, txn_id) == 0)
			n++;
	}
	store_reader_close(rd);
	free(s);
	return n;
}

static double
card_count_1h(fx *f, const char *card, int64_t t)
{
	vigil_txn x = txn_make("probe", card, "m-probe", t, 100);

	assert_int_equal(store_features_lookup(f->db, f->a, &x, f->f, store_schema_nfields()),
	    VIGIL_OK);
	return num_of(f->f, "vel.card.count_1h");
}

/* ------------------------------------------------------------------ */
/* The same txn_id for two cards at once                               */

static void
test_same_id_two_cards(void **state)
{
	/* Two cards, two stripe locks: the claim is what stops the second. */
	fx           *f = *state;
	vigil_txn     xa = txn_make("dup-1", "card-a", "m1", T0, 1000);
	vigil_txn     xb = txn_make("dup-1", "card-b", "m1", T0, 1000);
	store_outcome prior;
	store_scored  s;
	store_diag    d;
	uint32_t      n = store_schema_nfields();

	assert_int_equal(store_score_begin(f->db, f->a, &xa, f->f, n, &prior), VIGIL_OK);
	assert_int_equal(store_score_begin(f->db, f->b, &xb, f->f, n, &prior), VIGIL_ECONFLICT);
	scored_make(&s, &xa, 40);
	assert_int_equal(store_score_commit(f->db, f->a, &s, &d), VIGIL_OK);
	/* after the commit: the conflict carries the first outcome */
	memset(&prior, 0, sizeof prior);
	assert_int_equal(store_score_begin(f->db, f->b, &xb, f->f, n, &prior), VIGIL_ECONFLICT);
	assert_int_equal(prior.score, 40);
	/* a retry of the first is a retry */
	assert_int_equal(store_score_begin(f->db, f->b, &xa, f->f, n, &prior), VIGIL_EEXIST);
	assert_int_equal(archived(f->dir, "dup-1"), 1);
	assert_true(card_count_1h(f, "card-b", T0 + 1) == 0);

	/* an aborted claim leaves nothing: the other card may then have it */
	xa = txn_make("dup-2", "card-a", "m1", T0, 1000);
	xb = txn_make("dup-2", "card-b", "m1", T0, 1000);
	assert_int_equal(store_score_begin(f->db, f->a, &xa, f->f, n, &prior), VIGIL_OK);
	assert_int_equal(store_score_begin(f->db, f->b, &xb, f->f, n, &prior), VIGIL_ECONFLICT);
	store_score_abort(f->db, f->a);
	assert_int_equal(score_one(f->db, f->b, &xb, 5, f->f, &prior), VIGIL_OK);
	assert_int_equal(store_score_begin(f->db, f->a, &xa, f->f, n, &prior), VIGIL_ECONFLICT);
	assert_int_equal(prior.score, 5);
	assert_int_equal(archived(f->dir, "dup-2"), 1);
	/* a freed context drops its claim too */
	xa = txn_make("dup-3", "card-a", "m1", T0, 1000);
	assert_int_equal(store_score_begin(f->db, f->a, &xa, f->f, n, &prior), VIGIL_OK);
	store_ctx_free(f->a);
	f->a = store_ctx_new(f->db);
	assert_int_equal(score_one(f->db, f->b, &xa, 1, f->f, &prior), VIGIL_OK);
}

#define PAIRS 2000

typedef struct race {
	store_db          *db;
	pthread_barrier_t *bar;
	int                side; /* 0: card a, 1: card b */
	unsigned           ok, exist, conflict, other;
} race;

static void *
race_main(void *p)
{
	race          *r = p;
	store_ctx     *ctx = store_ctx_new(r->db);
	vigil_value    f[256];
	store_outcome  prior;
	store_scored  *s = malloc(sizeof *s);
	store_diag     d;
	char           id[32], card[32];

	for (int i = 0; i < PAIRS; i++) {
		vigil_txn x;
		vigil_err rv;

		snprintf(id, sizeof id, "race-%d", i);
		snprintf(card, sizeof card, "card-%c-%d", r->side ? 'b' : 'a', i);
		x = txn_make(id, card, "m-race", T0 + i, 100 + r->side);
		pthread_barrier_wait(r->bar);
		rv = store_score_begin(r->db, ctx, &x, f, store_schema_nfields(), &prior);
		if (rv == VIGIL_OK) {
			scored_make(s, &x, 10 + r->side);
			rv = store_score_commit(r->db, ctx, s, &d);
			if (rv == VIGIL_OK)
				r->ok++;
			else
				r->other++;
		} else if (rv == VIGIL_EEXIST) {
			r->exist++;
		} else if (rv == VIGIL_ECONFLICT) {
			r->conflict++;
		} else {
			r->other++;
		}
	}
	free(s);
	store_ctx_free(ctx);
	return NULL;
}

static void
test_same_id_race(void **state)
{
	/* 2000 txn_ids, each begun at the same moment by two threads for two
	 * cards: each is scored and archived exactly once. */
	fx                *f = *state;
	pthread_barrier_t  bar;
	race               r[2];
	pthread_t          t[2];
	char               dir[4200];
	store_reader      *rd = NULL;
	store_record       rec;
	store_diag         d;
	unsigned           records = 0;

	pthread_barrier_init(&bar, NULL, 2);
	for (int i = 0; i < 2; i++) {
		r[i] = (race){ .db = f->db, .bar = &bar, .side = i };
		assert_int_equal(pthread_create(&t[i], NULL, race_main, &r[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&bar);
	assert_int_equal(r[0].other + r[1].other, 0);
	assert_int_equal(r[0].exist + r[1].exist, 0);
	if (r[0].ok + r[1].ok != PAIRS)
		fail_msg("%u of %u txn_ids scored twice", r[0].ok + r[1].ok - PAIRS, PAIRS);
	assert_int_equal(r[0].conflict + r[1].conflict, PAIRS);
	snprintf(dir, sizeof dir, "%s/archive", f->dir);
	assert_int_equal(store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d), VIGIL_OK);
	while (store_reader_next(rd, &rec, &d) == VIGIL_OK)
		records++;
	store_reader_close(rd);
	assert_int_equal(records, PAIRS);
}

/* ------------------------------------------------------------------ */
/* Durability before dedupe (fsync always, fdatasync failing)          */

static void
test_sync_failure_is_not_a_duplicate(void **state)
{
	fx           *f = *state;
	vigil_txn     x1 = txn_make("t-1", "c1", "m1", T0, 500);
	vigil_txn     x2 = txn_make("t-2", "c1", "m1", T0 + 1000, 700);
	store_outcome prior;
	store_scored  s;
	store_diag    d;
	store_db_health h;
	uint32_t      n = store_schema_nfields();
	vigil_err     rv;

	if (!shim_loaded())
		skip();
	assert_int_equal(score_one(f->db, f->a, &x1, 10, f->f, &prior), VIGIL_OK);
	flag(f, "fdatasync-eio", "");
	assert_int_equal(store_score_begin(f->db, f->a, &x2, f->f, n, &prior), VIGIL_OK);
	scored_make(&s, &x2, 20);
	d.msg[0] = '\0';
	assert_int_equal(store_score_commit(f->db, f->a, &s, &d), VIGIL_EIO);
	assert_non_null(strstr(d.msg, "archive sync"));
	assert_non_null(strstr(d.msg, "Input/output error"));
	store_db_get_health(f->db, &h);
	assert_false(h.ok);
	assert_int_equal(h.archive.err, EIO);
	/* The identical retry: never "OK, duplicate" for an outcome that was
	 * not durable. While the archive fails, refused at once. */
	rv = store_score_begin(f->db, f->b, &x2, f->f, n, &prior);
	assert_int_not_equal(rv, VIGIL_EEXIST);
	assert_int_equal(rv, VIGIL_EAGAIN);
	/* a label is refused too, with the errno's text */
	{
		store_label l = { .fraud = true, .label_time_ms = T0 };

		snprintf(l.txn_id, sizeof l.txn_id, "t-1");
		snprintf(l.card_id, sizeof l.card_id, "c1");
		d.msg[0] = '\0';
		assert_int_equal(store_label_record(f->db, &l, &d), VIGIL_EAGAIN);
		assert_non_null(strstr(d.msg, "Input/output error"));
	}
	flag(f, "fdatasync-eio", NULL);
	assert_int_equal(store_db_maintain(f->db, &d), VIGIL_OK);
	store_db_get_health(f->db, &h);
	assert_true(h.ok);
	/* Healed: the retry is scored and written again, not applied again. */
	assert_int_equal(store_score_begin(f->db, f->b, &x2, f->f, n, &prior), VIGIL_OK);
	scored_make(&s, &x2, 30);
	assert_int_equal(store_score_commit(f->db, f->b, &s, &d), VIGIL_OK);
	assert_int_equal(store_score_begin(f->db, f->b, &x2, f->f, n, &prior), VIGIL_EEXIST);
	assert_int_equal(prior.score, 30);
	assert_true(card_count_1h(f, "c1", T0 + 2000) == 2);
	assert_int_equal(archived(f->dir, "t-2"), 2);
	/* After a reopen: the same (the second record only replaces the outcome). */
	store_ctx_free(f->a);
	store_ctx_free(f->b);
	store_db_close(f->db);
	f->db = db_open(f->dir, STORE_FSYNC_ALWAYS);
	f->a = store_ctx_new(f->db);
	f->b = store_ctx_new(f->db);
	assert_true(card_count_1h(f, "c1", T0 + 2000) == 2);
	assert_int_equal(store_score_begin(f->db, f->b, &x2, f->f, n, &prior), VIGIL_EEXIST);
	assert_int_equal(prior.score, 30);
}

static double
merchant_count_1h(fx *f, const char *merchant, int64_t t)
{
	vigil_txn x = txn_make("probe", "c-probe", merchant, t, 100);

	assert_int_equal(store_features_lookup(f->db, f->a, &x, f->f, store_schema_nfields()),
	    VIGIL_OK);
	return num_of(f->f, "vel.merchant.count_1h");
}

static void
test_sync_failure_is_undone(void **state)
{
	/* Issue 28, row 8: the attempt whose fdatasync failed was applied to
	 * the live state and stayed there, so its retry (and the card's next
	 * transaction) counted a transaction never acknowledged. */
	fx           *f = *state;
	vigil_txn     x1 = txn_make("u-1", "c1", "m1", T0, 500);
	vigil_txn     x2 = txn_make("u-2", "c1", "m1", T0 + 1000, 700);
	vigil_txn     x3 = txn_make("u-3", "c1", "m1", T0 + 3000, 900);
	store_outcome prior;
	store_scored  s;
	store_diag    d;
	uint32_t      n = store_schema_nfields();

	if (!shim_loaded())
		skip();
	assert_int_equal(score_one(f->db, f->a, &x1, 10, f->f, &prior), VIGIL_OK);
	flag(f, "fdatasync-eio", "");
	assert_int_equal(store_score_begin(f->db, f->a, &x2, f->f, n, &prior), VIGIL_OK);
	assert_true(num_of(f->f, "vel.card.count_1h") == 1);
	scored_make(&s, &x2, 20);
	assert_int_equal(store_score_commit(f->db, f->a, &s, &d), VIGIL_EIO);
	flag(f, "fdatasync-eio", NULL);
	/* Not acknowledged: counted nowhere, card or merchant. */
	assert_true(card_count_1h(f, "c1", T0 + 2000) == 1);
	assert_true(merchant_count_1h(f, "m1", T0 + 2000) == 1);
	assert_int_equal(store_db_maintain(f->db, &d), VIGIL_OK);
	/* The retry sees what the first attempt saw, and is applied once. */
	assert_int_equal(store_score_begin(f->db, f->b, &x2, f->f, n, &prior), VIGIL_OK);
	assert_true(num_of(f->f, "vel.card.count_1h") == 1);
	assert_true(num_of(f->f, "vel.merchant.count_1h") == 1);
	scored_make(&s, &x2, 30);
	assert_int_equal(store_score_commit(f->db, f->b, &s, &d), VIGIL_OK);
	assert_true(card_count_1h(f, "c1", T0 + 2000) == 2);
	assert_true(merchant_count_1h(f, "m1", T0 + 2000) == 2);
	assert_int_equal(store_score_begin(f->db, f->b, &x3, f->f, n, &prior), VIGIL_OK);
	assert_true(num_of(f->f, "vel.card.count_1h") == 2);
	scored_make(&s, &x3, 5);
	assert_int_equal(store_score_commit(f->db, f->b, &s, &d), VIGIL_OK);
	/* Both records of u-2 are in the archive (the first is in the file,
	 * never known durable); a reopen counts the transaction once. */
	assert_int_equal(archived(f->dir, "u-2"), 2);
	store_ctx_free(f->a);
	store_ctx_free(f->b);
	store_db_close(f->db);
	f->db = db_open(f->dir, STORE_FSYNC_ALWAYS);
	f->a = store_ctx_new(f->db);
	f->b = store_ctx_new(f->db);
	assert_true(card_count_1h(f, "c1", T0 + 4000) == 3);
	assert_true(merchant_count_1h(f, "m1", T0 + 4000) == 3);
	assert_int_equal(store_score_begin(f->db, f->b, &x2, f->f, n, &prior), VIGIL_EEXIST);
	assert_int_equal(prior.score, 30);
}

typedef struct committer {
	store_db  *db;
	store_ctx *ctx;
	vigil_txn  x;
	vigil_err  rv;
	_Atomic int state; /* 1 begun, 2 committed */
} committer;

static void *
committer_main(void *p)
{
	committer   *c = p;
	vigil_value  f[256];
	store_outcome prior;
	store_scored s;
	store_diag   d;

	c->rv = store_score_begin(c->db, c->ctx, &c->x, f, store_schema_nfields(), &prior);
	if (c->rv == VIGIL_OK) {
		scored_make(&s, &c->x, 60);
		atomic_store(&c->state, 1);
		c->rv = store_score_commit(c->db, c->ctx, &s, &d);
	}
	atomic_store(&c->state, 2);
	return NULL;
}

static void
retry_during_sync(fx *f, bool fail)
{
	committer     c = { .db = f->db, .ctx = f->a };
	pthread_t     t;
	store_outcome prior;
	uint32_t      n = store_schema_nfields();
	vigil_err     rv;

	c.x = txn_make(fail ? "t-slow-bad" : "t-slow", "c9", "m1", T0, 900);
	flag(f, "fdatasync-delay", "300");
	if (fail)
		flag(f, "fdatasync-eio", "");
	assert_int_equal(pthread_create(&t, NULL, committer_main, &c), 0);
	while (atomic_load(&c.state) == 0)
		usleep(1000);
	usleep(100000); /* the commit is in its 300 ms sync now */
	rv = store_score_begin(f->db, f->b, &c.x, f->f, n, &prior);
	/*
	 * The retry came back only once the first attempt knew: had it not
	 * waited, it would have met the first attempt's claim (a conflict),
	 * neither the committed outcome (EEXIST, score 60) nor "unavailable,
	 * come back" after a failed sync (EAGAIN).
	 * (The committer thread itself may still be returning from
	 * store_score_commit at this point: its state is not a witness.)
	 */
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&c.state), 2);
	flag(f, "fdatasync-delay", NULL);
	flag(f, "fdatasync-eio", NULL);
	if (fail) {
		assert_int_equal(c.rv, VIGIL_EIO);
		/* the first attempt failed its sync: the archive is unavailable
		 * until it heals, so the retry is told to come back */
		assert_int_equal(rv, VIGIL_EAGAIN);
	} else {
		assert_int_equal(c.rv, VIGIL_OK);
		assert_int_equal(rv, VIGIL_EEXIST);
		assert_int_equal(prior.score, 60);
	}
	if (rv == VIGIL_OK)
		store_score_abort(f->db, f->b);
}

static void
test_retry_waits_for_sync(void **state)
{
	if (!shim_loaded())
		skip();
	retry_during_sync(*state, false);
}

static void
test_retry_during_failing_sync(void **state)
{
	if (!shim_loaded())
		skip();
	retry_during_sync(*state, true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_id_two_cards, setup_never, teardown),
		cmocka_unit_test_setup_teardown(test_same_id_race, setup_never, teardown),
		cmocka_unit_test_setup_teardown(test_same_id_race, setup_always, teardown),
		cmocka_unit_test_setup_teardown(test_sync_failure_is_not_a_duplicate, setup_always,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sync_failure_is_undone, setup_always, teardown),
		cmocka_unit_test_setup_teardown(test_retry_waits_for_sync, setup_always, teardown),
		cmocka_unit_test_setup_teardown(test_retry_during_failing_sync, setup_always,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
