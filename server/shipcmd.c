/* SPDX-License-Identifier: MIT */
/*
 * server/shipcmd.c - expands [store] ship_command for one file (ship.c runs
 * it; config.c checks the template when it reads it). Every value is
 * substituted single-quoted, so a path with a space or a quote reaches the
 * command as one word: the placeholders must not be quoted in the template.
 */
#include <string.h>

#include "srv.h"

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
