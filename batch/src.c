/* SPDX-License-Identifier: MIT */
/*
 * batch/src.c - the records a rebuild reads: one archive directory, or
 * several replicas' archives merged into one stream (docs/vigil-rebuild.md,
 * "Several archives").
 *
 * One archive is read as it is, through one store_reader: nothing changes
 * for a single machine. Several are merged by event time: the next record
 * is the one with the smallest event time among each archive's next record,
 * ties going to the archive listed first (batch_run_init sorts them by
 * path, so the order on the command line does not matter). Each archive's
 * own order is kept, so the merge is deterministic, and equal to one
 * archive holding the same records in that order. A transaction in two
 * archives (a client retried it on the next replica after a failover) is
 * returned once: the first in merged order; every later score record with
 * the same txn_id is dropped and counted. Labels are all returned (a
 * rebuild keeps one per txn_id itself). The records of the merged stream
 * are numbered 1, 2, ... in its order (their seq), as the one archive
 * holding them would number them; their segment is "ARCHIVE/SEGMENT", with
 * ARCHIVE the archive directory's last component.
 *
 * The txn_ids seen are kept as 128-bit XXH3 hashes in an open-addressing
 * table (16 bytes a slot, at most half full): 32 bytes per transaction
 * instead of a uthash entry's ~90 plus the id; two ids colliding in 128
 * bits is not a practical concern.
 */
#include <stdlib.h>
#include <string.h>

#include "int.h"

#define SRC_SEG_MAX 320

typedef struct src_in {
	store_reader *rd;
	store_record  head;     /* valid while has_head */
	bool          has_head;
	const char   *base;     /* the archive directory's last component */
	const char   *seg_of;   /* head.segment as the reader gave it, last seen */
	char          seg[SRC_SEG_MAX]; /* "base/segment" */
} src_in;

struct batch_src {
	store_reader *one;      /* a single archive: read as it is */
	src_in       *in;
	uint32_t      nin;
	int32_t       last;     /* index of the input last returned, -1: none */
	uint32_t      want;     /* type mask (0: all) */
	uint64_t      seq;      /* records of the merged stream so far */
	uint64_t      dups;
	/* txn_ids seen: open addressing, 2 x uint64 per slot, 0/0 = empty */
	uint64_t     *slots;
	uint64_t      nslots, nused;
};

/* Adds h to the set: true if it was new. false with *ret_err on ENOMEM. */
static bool
src_seen_add(batch_src *s, XXH128_hash_t h, vigil_err *ret_err)
{
	uint64_t mask, i;

	if (h.low64 == 0 && h.high64 == 0)
		h.low64 = 1;
	if (2 * (s->nused + 1) > s->nslots) {
		uint64_t n = s->nslots ? 2 * s->nslots : 1u << 16;
		uint64_t *t = calloc(n, 2 * sizeof *t);

		if (t == NULL) {
			*ret_err = VIGIL_ENOMEM;
			return false;
		}
		for (uint64_t k = 0; k < s->nslots; k++) {
			uint64_t lo = s->slots[2 * k], hi = s->slots[2 * k + 1];

			if (lo == 0 && hi == 0)
				continue;
			for (i = lo & (n - 1); t[2 * i] != 0 || t[2 * i + 1] != 0; i = (i + 1) & (n - 1))
				;
			t[2 * i] = lo;
			t[2 * i + 1] = hi;
		}
		free(s->slots);
		s->slots = t;
		s->nslots = n;
	}
	mask = s->nslots - 1;
	for (i = h.low64 & mask; s->slots[2 * i] != 0 || s->slots[2 * i + 1] != 0;
	    i = (i + 1) & mask)
		if (s->slots[2 * i] == h.low64 && s->slots[2 * i + 1] == h.high64)
			return false;
	s->slots[2 * i] = h.low64;
	s->slots[2 * i + 1] = h.high64;
	s->nused++;
	return true;
}

static vigil_err
src_advance(src_in *in, store_diag *reterr)
{
	vigil_err rv = store_reader_next(in->rd, &in->head, reterr);

	in->has_head = false;
	if (rv == VIGIL_ENOTFOUND)
		return VIGIL_OK;
	if (rv != VIGIL_OK)
		return rv;
	in->has_head = true;
	if (in->seg_of == NULL || strcmp(in->seg_of, in->head.segment) != 0)
		snprintf(in->seg, sizeof in->seg, "%s/%s", in->base, in->head.segment);
	in->seg_of = in->head.segment;
	return VIGIL_OK;
}

vigil_err
batch_src_open(const char *const *dirs, uint32_t ndirs, int64_t from_ms, int64_t to_ms,
    store_corrupt_fn on_corrupt, void *arg, batch_src **ret_src, store_diag *reterr)
{
	batch_src *s;
	vigil_err rv = VIGIL_OK;

	s = calloc(1, sizeof *s);
	if (s == NULL)
		return VIGIL_ENOMEM;
	s->last = -1;
	if (ndirs == 1) {
		rv = store_reader_open(dirs[0], from_ms, to_ms, on_corrupt, arg, &s->one, reterr);
		if (rv != VIGIL_OK)
			goto fail;
		*ret_src = s;
		return VIGIL_OK;
	}
	s->in = calloc(ndirs, sizeof *s->in);
	if (s->in == NULL) {
		rv = VIGIL_ENOMEM;
		goto fail;
	}
	s->nin = ndirs;
	for (uint32_t i = 0; i < ndirs; i++) {
		const char *b = dirs[i] + strlen(dirs[i]);

		while (b > dirs[i] && b[-1] == '/')
			b--;
		while (b > dirs[i] && b[-1] != '/')
			b--;
		s->in[i].base = b;
		rv = store_reader_open(dirs[i], from_ms, to_ms, on_corrupt, arg, &s->in[i].rd,
		    reterr);
		if (rv != VIGIL_OK)
			goto fail;
	}
	*ret_src = s;
	return VIGIL_OK;
fail:
	batch_src_close(s);
	return rv;
}

void
batch_src_want(batch_src *s, uint32_t type_mask)
{
	/* Several archives: every record is read, for the duplicates and the
	 * numbering; the mask is applied here. */
	if (s->one != NULL)
		store_reader_want(s->one, type_mask);
	else
		s->want = type_mask;
}

vigil_err
batch_src_next(batch_src *s, store_record *ret_rec, store_diag *reterr)
{
	vigil_err rv;

	if (s->one != NULL)
		return store_reader_next(s->one, ret_rec, reterr);
	if (s->last < 0) {
		for (uint32_t i = 0; i < s->nin; i++) {
			rv = src_advance(&s->in[i], reterr);
			if (rv != VIGIL_OK)
				return rv;
		}
	} else {
		rv = src_advance(&s->in[s->last], reterr);
		if (rv != VIGIL_OK)
			return rv;
	}
	for (;;) {
		int32_t best = -1;
		src_in *in;

		for (uint32_t i = 0; i < s->nin; i++)
			if (s->in[i].has_head && (best < 0 ||
			    s->in[i].head.event_time_ms < s->in[best].head.event_time_ms))
				best = (int32_t)i;
		s->last = best;
		if (best < 0)
			return VIGIL_ENOTFOUND;
		in = &s->in[best];
		if (in->head.type == STORE_REC_SCORE) {
			const char *id;
			size_t len;

			if (batch_scan_txn_id(in->head.payload, in->head.len, &id, &len) == VIGIL_OK &&
			    !src_seen_add(s, XXH3_128bits(id, len), &rv)) {
				if (rv == VIGIL_ENOMEM)
					return rv;
				s->dups++;
				rv = src_advance(in, reterr);
				if (rv != VIGIL_OK)
					return rv;
				continue;
			}
		}
		s->seq++;
		if (s->want != 0 && (s->want & (1u << in->head.type)) == 0) {
			rv = src_advance(in, reterr);
			if (rv != VIGIL_OK)
				return rv;
			continue;
		}
		*ret_rec = in->head;
		ret_rec->seq = s->seq;
		ret_rec->segment = in->seg;
		return VIGIL_OK;
	}
}

void
batch_src_get_stats(const batch_src *s, store_reader_stats *ret_stats)
{
	memset(ret_stats, 0, sizeof *ret_stats);
	if (s->one != NULL) {
		store_reader_get_stats(s->one, ret_stats);
		return;
	}
	for (uint32_t i = 0; i < s->nin; i++) {
		store_reader_stats st;

		store_reader_get_stats(s->in[i].rd, &st);
		ret_stats->records += st.records;
		ret_stats->bytes += st.bytes;
		ret_stats->corrupt_records += st.corrupt_records;
		ret_stats->corrupt_bytes += st.corrupt_bytes;
		ret_stats->segments += st.segments;
		ret_stats->skipped_bytes += st.skipped_bytes;
		ret_stats->lost_records += st.lost_records;
	}
}

uint64_t
batch_src_duplicates(const batch_src *s)
{
	return s->dups;
}

void
batch_src_close(batch_src *s)
{
	if (s == NULL)
		return;
	store_reader_close(s->one);
	for (uint32_t i = 0; i < s->nin; i++)
		store_reader_close(s->in[i].rd);
	free(s->in);
	free(s->slots);
	free(s);
}
