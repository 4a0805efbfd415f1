/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/test_batch_reader.c - the archive reader as vigil-rebuild's
 * label pass uses it: store_reader_want(label) passes over the score
 * frames by their headers (here in a closed and an open segment). On a damaged
 * segment it must return exactly the labels a reader checking every frame
 * returns, and report each stretch that breaks the frame sequence with the
 * same segment, offset and size: a bad length (even one that leads to
 * another frame's start), a bad magic, a changed sequence number, a frame
 * cut short at the end. Damage inside a skipped frame's payload is the one
 * thing it does not see (the transaction pass reports that).
 */
#include <dirent.h>
#include <fcntl.h>
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

#include "fixture.h"

#define A    (1772323200000LL) /* 2026-03-01T00:00:00Z */
#define NREC 240               /* records in the closed segment */
#define NOPEN 10               /* and in the open one after it */
#define HDR  32                /* frame header bytes (docs/archive.md) */
#define MAXR 512

typedef struct seen_rec {
	int      type;
	uint64_t seq, off;
	size_t   len;
	char     seg[64];
} seen_rec;

typedef struct seen_bad {
	uint64_t off, skipped;
	char     seg[64], what[96];
} seen_bad;

typedef struct seen {
	size_t   n, nbad;
	seen_rec r[MAXR];
	seen_bad bad[64];
	store_reader_stats st;
} seen;

static void
on_bad(void *arg, const char *seg, uint64_t off, uint64_t skipped, const char *what)
{
	seen *s = arg;
	seen_bad *b;

	assert_true(s->nbad < sizeof s->bad / sizeof s->bad[0]);
	b = &s->bad[s->nbad++];
	b->off = off;
	b->skipped = skipped;
	snprintf(b->seg, sizeof b->seg, "%s", seg);
	snprintf(b->what, sizeof b->what, "%s", what);
}

/* Every record (want 0) or only the labels (want the label bit). */
static void
collect(const char *archive, uint32_t want, seen *s)
{
	store_reader *rd;
	store_record rec;
	store_diag d;
	vigil_err rv;

	memset(s, 0, sizeof *s);
	if (store_reader_open(archive, INT64_MIN, INT64_MAX, on_bad, s, &rd, &d) != VIGIL_OK)
		fail_msg("store_reader_open: %s", d.msg);
	store_reader_want(rd, want);
	while ((rv = store_reader_next(rd, &rec, &d)) == VIGIL_OK) {
		seen_rec *r;

		assert_true(s->n < MAXR);
		r = &s->r[s->n++];
		r->type = (int)rec.type;
		r->seq = rec.seq;
		r->off = rec.offset;
		r->len = rec.len;
		snprintf(r->seg, sizeof r->seg, "%s", rec.segment);
	}
	assert_int_equal(rv, VIGIL_ENOTFOUND);
	store_reader_get_stats(rd, &s->st);
	store_reader_close(rd);
}

/* NREC records, every 8th a label for the transaction before it (frame 8k+5
 * is a label, 8k+4 its transaction), then a rotation (the segment is closed:
 * an index beside it) and NOPEN more records in the open segment. The
 * closed segment ends with a score frame. */
static void
build(const char *datadir, char seg[600])
{
	store_archive *ar = fx_archive(datadir);
	char id[NREC + NOPEN][16], cards[7][8], dir[400];
	struct dirent *de;
	store_diag d;
	int nidx = 0;
	DIR *dh;

	for (int i = 0; i < 7; i++)
		snprintf(cards[i], sizeof cards[i], "c%d", i);
	for (int i = 0; i < NREC + NOPEN; i++) {
		snprintf(id[i], sizeof id[i], "t%04d", i);
		if (i % 8 == 5) {
			fx_label(ar, id[i - 1], i % 16 == 5, A - 3600000 + i);
		} else {
			fx_txn t = { id[i], cards[i % 7], "m1", NULL, "FR", "EUR", 1000 + 37 * i,
				A - 86400000 + 1000LL * i, 5411, NULL, 0 };
			fx_score(ar, &t);
		}
		if (i == NREC - 1 && store_archive_rotate(ar, &d) != VIGIL_OK)
			fail_msg("rotate: %s", d.msg);
	}
	store_archive_close(ar);
	/* The closed segment: the .log with an .idx beside it. */
	snprintf(dir, sizeof dir, "%s/archive", datadir);
	dh = opendir(dir);
	assert_non_null(dh);
	seg[0] = '\0';
	while ((de = readdir(dh)) != NULL) {
		size_t len = strlen(de->d_name);

		if (strncmp(de->d_name, "seg-", 4) != 0 || len < 4 ||
		    strcmp(de->d_name + len - 4, ".idx") != 0)
			continue;
		nidx++;
		snprintf(seg, 600, "%s/%.*s.log", dir, (int)(len - 4), de->d_name);
	}
	closedir(dh);
	assert_int_equal(nidx, 1);
}

static void
patch(const char *path, uint64_t off, const void *b, size_t n)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The labels of full (every record) and of lab (labels only) are the same
 * records; the reports are the same, or lab has none (quiet). */
static void
compare(const seen *full, const seen *lab, bool quiet, const char *what)
{
	size_t k = 0;

	for (size_t i = 0; i < lab->n; i++)
		if (lab->r[i].type != STORE_REC_LABEL)
			fail_msg("%s: a non-label record returned", what);
	for (size_t i = 0; i < full->n; i++) {
		const seen_rec *f = &full->r[i];

		if (f->type != STORE_REC_LABEL)
			continue;
		if (k >= lab->n)
			fail_msg("%s: label seq %llu missing", what, (unsigned long long)f->seq);
		if (lab->r[k].seq != f->seq || lab->r[k].off != f->off ||
		    lab->r[k].len != f->len || strcmp(lab->r[k].seg, f->seg) != 0)
			fail_msg("%s: label %zu differs (seq %llu vs %llu)", what, k,
			    (unsigned long long)lab->r[k].seq, (unsigned long long)f->seq);
		k++;
	}
	if (k != lab->n)
		fail_msg("%s: %zu labels, want %zu", what, lab->n, k);
	if (quiet) {
		assert_int_equal(lab->nbad, 0);
		return;
	}
	if (lab->nbad != full->nbad)
		fail_msg("%s: %zu reports, want %zu", what, lab->nbad, full->nbad);
	for (size_t i = 0; i < full->nbad; i++) {
		const seen_bad *a = &full->bad[i], *b = &lab->bad[i];

		if (a->off != b->off || a->skipped != b->skipped || strcmp(a->seg, b->seg) != 0 ||
		    strcmp(a->what, b->what) != 0)
			fail_msg("%s: report %zu: %s+%llu %s (%llu) vs %s+%llu %s (%llu)", what, i,
			    b->seg, (unsigned long long)b->off, b->what,
			    (unsigned long long)b->skipped, a->seg, (unsigned long long)a->off,
			    a->what, (unsigned long long)a->skipped);
	}
}

typedef enum damage {
	D_NONE,
	D_LEN_TO_NEXT_FRAME, /* score length covers the label after it: lands on a frame start */
	D_LEN_LONGER,
	D_LEN_SHORTER,
	D_MAGIC,
	D_SEQ,
	D_SCORE_PAYLOAD,     /* unseen by the label reader */
	D_LABEL_PAYLOAD,
	D_TRUNCATED,         /* the closed segment's last frame cut short */
	D_LAST_LEN,          /* the last frame's length past the end */
	D_COUNT
} damage;

static const char *const damage_name[D_COUNT] = {
	"none", "length to the next frame's start", "longer length", "shorter length",
	"magic", "sequence number", "score payload", "label payload", "truncated",
	"last length",
};

static void
test_label_reader_matches_full(void **state)
{
	const char *dd = fx_tmpdir(0);
	char seg[600], archive[600];
	seen *clean = calloc(1, sizeof *clean), *full = calloc(1, sizeof *full),
	    *lab = calloc(1, sizeof *lab);
	uint8_t *orig;
	size_t seglen, last;
	struct stat sb;
	FILE *f;

	(void)state;
	assert_true(clean != NULL && full != NULL && lab != NULL);
	build(dd, seg);
	snprintf(archive, sizeof archive, "%s/archive", dd);
	assert_int_equal(stat(seg, &sb), 0);
	seglen = (size_t)sb.st_size;
	orig = malloc(seglen);
	assert_non_null(orig);
	f = fopen(seg, "rb");
	assert_non_null(f);
	assert_int_equal(fread(orig, 1, seglen, f), seglen);
	fclose(f);
	collect(archive, 0, clean);
	assert_int_equal(clean->n, NREC + NOPEN);
	assert_int_equal(clean->nbad, 0);
	last = NREC - 1;
	assert_int_equal(clean->r[last].type, STORE_REC_SCORE);
	assert_int_equal(clean->r[last].off + HDR + clean->r[last].len, seglen);

	for (int dmg = D_NONE; dmg < D_COUNT; dmg++) {
		/* Score frame 8*12+4 = 100, label 101 after it. */
		const seen_rec *s = &clean->r[100], *l = &clean->r[101], *e = &clean->r[last];
		uint8_t b[8];

		assert_int_equal(s->type, STORE_REC_SCORE);
		assert_int_equal(l->type, STORE_REC_LABEL);
		switch ((damage)dmg) {
		case D_NONE:
			break;
		case D_LEN_TO_NEXT_FRAME:
			put_le32(b, (uint32_t)(s->len + HDR + l->len));
			patch(seg, s->off + 8, b, 4);
			break;
		case D_LEN_LONGER:
			put_le32(b, (uint32_t)(s->len + 1000));
			patch(seg, s->off + 8, b, 4);
			break;
		case D_LEN_SHORTER:
			put_le32(b, (uint32_t)(s->len - 7));
			patch(seg, s->off + 8, b, 4);
			break;
		case D_MAGIC:
			patch(seg, s->off, "XGLR", 4);
			break;
		case D_SEQ:
			put_le64(b, s->seq + 5);
			patch(seg, s->off + 16, b, 8);
			break;
		case D_SCORE_PAYLOAD:
			b[0] = orig[s->off + HDR + s->len / 2] ^ 0x5a;
			patch(seg, s->off + HDR + s->len / 2, b, 1);
			break;
		case D_LABEL_PAYLOAD:
			b[0] = orig[l->off + HDR + 1] ^ 0x5a;
			patch(seg, l->off + HDR + 1, b, 1);
			break;
		case D_TRUNCATED:
			assert_int_equal(truncate(seg, (off_t)(e->off + HDR + e->len / 2)), 0);
			break;
		case D_LAST_LEN:
			put_le32(b, (uint32_t)(e->len + 100));
			patch(seg, e->off + 8, b, 4);
			break;
		case D_COUNT:
			break;
		}
		collect(archive, 0, full);
		collect(archive, 1u << STORE_REC_LABEL, lab);
		if (dmg == D_NONE) {
			assert_int_equal(full->nbad, 0);
			/* the score frames were passed over, not read */
			assert_true(lab->st.skipped_bytes > 0);
			assert_int_equal(lab->st.bytes + lab->st.skipped_bytes, full->st.bytes);
		} else {
			if (full->nbad == 0)
				fail_msg("%s: no report", damage_name[dmg]);
		}
		compare(full, lab, dmg == D_SCORE_PAYLOAD, damage_name[dmg]);
		/* Put the segment back. */
		f = fopen(seg, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(orig, 1, seglen, f), seglen);
		assert_int_equal(fclose(f), 0);
	}
	free(orig);
	free(clean);
	free(full);
	free(lab);
	fx_rm_rf(dd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_reader_matches_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
