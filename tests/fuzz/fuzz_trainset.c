/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_trainset.c - libFuzzer target for the training-set codec
 * (batch/trainset.c, batch_trainset_decode): the 'R' section of a
 * `vigil-rebuild --partition` file carries one, and `--merge` decodes it
 * (fuzz-batch-part reaches it through a whole partial file, but its fixture
 * archive has no model vectors, so only an empty set; this target gets the
 * days and rows).
 *
 * Arbitrary bytes through batch_trainset_decode. A refusal must leave no set
 * and name an offset inside the input with a one-line message. A set that
 * decodes must hold together: its stats add up (rows = frauds + legitimate
 * kept, the weights of a day's kept rows sum to its legitimate count), it
 * encodes, and that encoding decodes and encodes to the same bytes (the
 * codec's canonical form), and it merges into an empty set of the same
 * names and cap, twice (the second time as a set that already has rows).
 * Any crash, sanitizer report or broken invariant (abort) is a finding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_stats(const batch_trainset *s)
{
	batch_trainset_stats st;

	batch_trainset_stats_get(s, &st);
	if (st.rows != st.frauds + st.legit_kept || st.legit_kept > st.legit_seen)
		abort();
	/* A day's kept rows weigh its legitimate count in all (a day whose
	 * rows were all dropped weighs nothing). */
	if (!(st.legit_weight <= (double)st.legit_seen * (1 + 1e-9)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	batch_trainset *s = NULL, *again = NULL, *empty = NULL;
	store_diag d;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;
	uint64_t off = UINT64_MAX;
	vigil_err rv;

	d.msg[0] = '\0';
	rv = batch_trainset_decode(data, size, &s, &off, &d);
	if (rv != VIGIL_OK) {
		if (s != NULL)
			abort();
		if (rv != VIGIL_ENOMEM && (off > size || d.msg[0] == '\0' ||
		    strchr(d.msg, '\n') != NULL))
			abort();
		return 0;
	}
	check_stats(s);
	if (batch_trainset_encode(s, &b1, &l1, &d) != VIGIL_OK)
		goto out;
	if (batch_trainset_decode(b1, l1, &again, NULL, &d) != VIGIL_OK)
		abort(); /* what encode writes, decode reads */
	check_stats(again);
	if (batch_trainset_encode(again, &b2, &l2, &d) != VIGIL_OK)
		goto out;
	if (l1 != l2 || memcmp(b1, b2, l1) != 0)
		abort();
	/* The same names and cap, no rows: an empty encoding of s's header. */
	{
		uint8_t *e = malloc(l1);
		size_t   hdr = 16;

		if (e == NULL)
			goto out;
		/* version, nfeat, max_rows, names; then no days and no rows */
		for (uint32_t j = 0, nf = (uint32_t)b1[4] | (uint32_t)b1[5] << 8; j < nf; j++)
			hdr += 1 + b1[hdr];
		memcpy(e, b1, hdr);
		memset(e + hdr, 0, 12);
		if (batch_trainset_decode(e, hdr + 12, &empty, NULL, &d) != VIGIL_OK)
			abort();
		free(e);
	}
	rv = batch_trainset_merge(empty, s, &d);
	if (rv == VIGIL_OK)
		rv = batch_trainset_merge(empty, again, &d);
	if (rv == VIGIL_OK)
		check_stats(empty);
	else if (rv != VIGIL_ETOOBIG && rv != VIGIL_ENOMEM)
		abort();
out:
	free(b1);
	free(b2);
	batch_trainset_free(s);
	batch_trainset_free(again);
	batch_trainset_free(empty);
	return 0;
}
