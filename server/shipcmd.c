/* SPDX-License-Identifier: MIT */
/*
 * server/shipcmd.c - archive shipping's pure parts (ship.c runs the
 * thread): which segments a scan keeps (srv_ship_keep), and ship_command
 * expanded for one file (config.c checks the template when it reads it).
 * Every value is substituted single-quoted, so a path with a space or a
 * quote reaches the command as one word: the placeholders must not be
 * quoted in the template.
 */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

static int
ship_seg_cmp(const void *a, const void *b)
{
	const ship_seg *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

bool
srv_ship_keep_would(const ship_seg *segs, uint32_t n, uint32_t cap, uint64_t seq)
{
	return n < cap || (cap > 0 && seq < segs[0].seq);
}

void
srv_ship_keep(ship_seg *segs, uint32_t *n, uint32_t cap, const ship_seg *g)
{
	uint32_t i, c;

	if (!srv_ship_keep_would(segs, *n, cap, g->seq))
		return;
	if (*n < cap) { /* up from the new last */
		for (i = (*n)++; i > 0 && segs[(i - 1) / 2].seq < g->seq; i = (i - 1) / 2)
			segs[i] = segs[(i - 1) / 2];
		segs[i] = *g;
		return;
	}
	for (i = 0; (c = 2 * i + 1) < *n; i = c) { /* the root replaced: down */
		if (c + 1 < *n && segs[c + 1].seq > segs[c].seq)
			c++;
		if (segs[c].seq <= g->seq)
			break;
		segs[i] = segs[c];
	}
	segs[i] = *g;
}

void
srv_ship_sort(ship_seg *segs, uint32_t n)
{
	qsort(segs, n, sizeof *segs, ship_seg_cmp);
}


/* Appends s single-quoted for /bin/sh ('it'\''s'). */
static bool
ship_quote(char *buf, size_t cap, size_t *pos, const char *s)
{
	size_t n = *pos;

	if (n + 1 >= cap)
		return false;
	buf[n++] = '\'';
	for (; *s != '\0'; s++) {
		if (*s == '\'') {
			if (n + 4 >= cap)
				return false;
			memcpy(buf + n, "'\\''", 4);
			n += 4;
		} else {
			if (n + 1 >= cap)
				return false;
			buf[n++] = *s;
		}
	}
	if (n + 1 >= cap)
		return false;
	buf[n++] = '\'';
	buf[n] = '\0';
	*pos = n;
	return true;
}

vigil_err
srv_ship_expand(const char *tmpl, const char *path, const char *file, const char *replica,
    char *buf, size_t cap)
{
	size_t n = 0;

	if (cap == 0)
		return VIGIL_ETOOBIG;
	buf[0] = '\0';
	for (const char *t = tmpl; *t != '\0'; t++) {
		bool ok = true;

		if (*t != '%') {
			if (n + 1 >= cap)
				return VIGIL_ETOOBIG;
			buf[n++] = *t;
			buf[n] = '\0';
			continue;
		}
		switch (t[1]) {
		case 'p': ok = ship_quote(buf, cap, &n, path); break;
		case 'f': ok = ship_quote(buf, cap, &n, file); break;
		case 'r': ok = ship_quote(buf, cap, &n, replica); break;
		case '%':
			ok = n + 1 < cap;
			if (ok) {
				buf[n++] = '%';
				buf[n] = '\0';
			}
			break;
		default:
			return VIGIL_EINVAL;
		}
		if (!ok)
			return VIGIL_ETOOBIG;
		t++;
	}
	return VIGIL_OK;
}
