/* SPDX-License-Identifier: MIT */
/*
 * rules/arena.c - the arena every compiled program's strings and tables
 * live in (rules_arena_*): chunks of at least 16 KiB, 16-byte aligned
 * zeroed allocations, all freed at once by rules_arena_fini. Kept out of
 * the stages (as Lua keeps lmem.c out of its pipeline) so lex, parse,
 * check and list share one allocator with no stage owning it.
 */
#include <stdlib.h>
#include <string.h>

#include "int.h"

struct rules_arena_chunk {
	rules_arena_chunk *next;
	size_t             cap;
	_Alignas(16) unsigned char data[];
};

void *
rules_arena_alloc(rules_arena *a, size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (a->head == NULL || a->cap - a->used < n) {
		size_t             cap = n > 16384 ? n : 16384;
		rules_arena_chunk *c = malloc(sizeof *c + cap);

		if (c == NULL)
			return NULL;
		c->next = a->head;
		c->cap = cap;
		a->head = c;
		a->used = 0;
		a->cap = cap;
	}
	p = a->head->data + a->used;
	a->used += n;
	memset(p, 0, n);
	return p;
}

char *
rules_arena_strndup(rules_arena *a, const char *s, size_t n)
{
	char *p = rules_arena_alloc(a, n + 1);

	if (p == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
rules_arena_fini(rules_arena *a)
{
	rules_arena_chunk *c = a->head;

	while (c != NULL) {
		rules_arena_chunk *next = c->next;

		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = a->cap = 0;
}
