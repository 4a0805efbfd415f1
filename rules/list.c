/* SPDX-License-Identifier: MIT */
/*
 * rules/list.c - named lists as hash sets for `in` and starts_with().
 * Each item's xxh3 hash is computed once at compile time; a lookup hashes
 * the value (or, for prefix lists, each of its prefixes whose length is one
 * of the list's distinct item lengths) and probes an open-addressing table
 * of item indexes: O(1) per length, no allocation, exact (a hash match is
 * confirmed by comparing the bytes). A hand-rolled table rather than uthash
 * for memory: a million 12-byte ids hold 45.0 bytes of heap an item here
 * against 101.4 in a uthash set (an entry per item and its bucket share),
 * the strings' 13 bytes included in both (bench-rules --list-items N,
 * docs/BENCHMARKS.md, "Rules engine").
 */
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "int.h"
#include "vec.h"

uint64_t
rules_hash_str(const char *s, size_t len)
{
	return XXH3_64bits(s, len);
}

uint64_t
rules_hash_num(double d)
{
	if (d == 0)
		d = 0; /* -0 and +0 are the same item */
	return XXH3_64bits(&d, sizeof d);
}

static vigil_err
list_reserve(rules_list *l, uint32_t *cap)
{
	size_t ncap;

	if (l->n < *cap)
		return VIGIL_OK;
	ncap = vigil_array_grown(*cap, (size_t)l->n + 1, 16, UINT32_MAX);
	if (ncap == 0)
		return VIGIL_ETOOBIG;
	if (l->kind == RULES_LIST_NUMBER) {
		if (vigil_array_resize(&l->d, ncap, sizeof *l->d) != VIGIL_OK)
			return VIGIL_ENOMEM;
	} else if (vigil_array_resize(&l->s, ncap, sizeof *l->s) != VIGIL_OK ||
	    vigil_array_resize(&l->slen, ncap, sizeof *l->slen) != VIGIL_OK) {
		return VIGIL_ENOMEM;
	}
	*cap = (uint32_t)ncap;
	return VIGIL_OK;
}

vigil_err
rules_list_add_str(rules_list *l, rules_arena *a, const char *s, uint32_t len, uint32_t *cap)
{
	char     *copy;
	vigil_err rv = list_reserve(l, cap);

	if (rv != VIGIL_OK)
		return rv;
	if (len > RULES_MAX_ITEM)
		return VIGIL_ETOOBIG;
	copy = rules_arena_strndup(a, s, len);
	if (copy == NULL)
		return VIGIL_ENOMEM;
	l->s[l->n] = copy;
	l->slen[l->n] = len;
	l->n++;
	return VIGIL_OK;
}

vigil_err
rules_list_add_num(rules_list *l, double d, uint32_t *cap)
{
	vigil_err rv = list_reserve(l, cap);

	if (rv != VIGIL_OK)
		return rv;
	l->d[l->n++] = d == 0 ? 0 : d;
	return VIGIL_OK;
}

static bool
list_item_eq(const rules_list *l, uint32_t i, uint32_t j)
{
	if (l->kind == RULES_LIST_NUMBER)
		return l->d[i] == l->d[j];
	return l->slen[i] == l->slen[j] && memcmp(l->s[i], l->s[j], l->slen[i]) == 0;
}

/* Builds the table, dropping duplicate items (compacting in place). */
vigil_err
rules_list_seal(rules_list *l)
{
	uint32_t size = 16, kept = 0;
	bool     haslen[RULES_MAX_ITEM + 1] = { false };

	while (size < 2 * (uint64_t)l->n + 2)
		size *= 2;
	l->table = calloc(size, sizeof *l->table);
	l->h = malloc(((size_t)l->n + 1) * sizeof *l->h);
	if (l->table == NULL || l->h == NULL)
		return VIGIL_ENOMEM;
	l->mask = size - 1;
	for (uint32_t i = 0; i < l->n; i++) {
		uint64_t h = l->kind == RULES_LIST_NUMBER ? rules_hash_num(l->d[i])
		                                          : rules_hash_str(l->s[i], l->slen[i]);
		uint32_t p = (uint32_t)h & l->mask;
		bool     dup = false;

		/* move item i down to kept before probing, so indexes stay dense */
		if (l->kind == RULES_LIST_NUMBER) {
			l->d[kept] = l->d[i];
		} else {
			l->s[kept] = l->s[i];
			l->slen[kept] = l->slen[i];
		}
		while (l->table[p] != 0) {
			uint32_t j = l->table[p] - 1;

			if (l->h[j] == h && list_item_eq(l, j, kept)) {
				dup = true;
				break;
			}
			p = (p + 1) & l->mask;
		}
		if (dup)
			continue;
		l->h[kept] = h;
		l->table[p] = kept + 1;
		if (l->kind != RULES_LIST_NUMBER)
			haslen[l->slen[kept]] = true;
		kept++;
	}
	l->n = kept;
	l->nlens = 0;
	for (uint32_t k = 0; k <= RULES_MAX_ITEM; k++)
		if (haslen[k])
			l->lens[l->nlens++] = k;
	return VIGIL_OK;
}

static bool
list_find_str(const rules_list *l, uint64_t h, const char *s, uint32_t len)
{
	uint32_t p = (uint32_t)h & l->mask;

	for (;;) {
		uint32_t e = l->table[p];

		if (e == 0)
			return false;
		e--;
		if (l->h[e] == h && l->slen[e] == len && memcmp(l->s[e], s, len) == 0)
			return true;
		p = (p + 1) & l->mask;
	}
}

bool
rules_list_has_str(const rules_list *l, const char *s, uint32_t len)
{
	if (l->n == 0)
		return false;
	return list_find_str(l, rules_hash_str(s, len), s, len);
}

bool
rules_list_has_prefix(const rules_list *l, const char *s, uint32_t len)
{
	for (uint32_t k = 0; k < l->nlens && l->lens[k] <= len; k++)
		if (list_find_str(l, rules_hash_str(s, l->lens[k]), s, l->lens[k]))
			return true;
	return false;
}

bool
rules_list_has_num(const rules_list *l, double d)
{
	uint64_t h;
	uint32_t p;

	if (l->n == 0)
		return false;
	h = rules_hash_num(d);
	p = (uint32_t)h & l->mask;
	for (;;) {
		uint32_t e = l->table[p];

		if (e == 0)
			return false;
		e--;
		if (l->h[e] == h && l->d[e] == d)
			return true;
		p = (p + 1) & l->mask;
	}
}
