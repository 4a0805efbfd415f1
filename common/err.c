/* SPDX-License-Identifier: MIT */
/*
 * common/err.c - texts and names of vigil_err, decisions and channels, and
 * the errno translation used at component boundaries.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vigil.h"

/* Each code's name (vigil_errname) and text (vigil_strerror). */
static const struct {
	const char *name;
	const char *text;
} err_table[VIGIL_ERR_COUNT_] = {
#define VIGIL_ERR(name, text) [VIGIL_##name] = { #name, text },
#include "err.def"
#undef VIGIL_ERR
};

const char *
vigil_strerror(vigil_err err)
{
	if ((unsigned)err >= VIGIL_ERR_COUNT_)
		return "unknown error";
	return err_table[err].text;
}

const char *
vigil_errname(vigil_err err)
{
	if ((unsigned)err >= VIGIL_ERR_COUNT_)
		return "EUNKNOWN";
	return err_table[err].name;
}

vigil_err
vigil_err_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return VIGIL_OK;
	case ENOENT:
		return VIGIL_ENOTFOUND;
	case EEXIST:
		return VIGIL_EEXIST;
	case ENOMEM:
		return VIGIL_ENOMEM;
	case EINVAL:
		return VIGIL_EINVAL;
	case EAGAIN:
		return VIGIL_EAGAIN;
	case EBUSY:
		return VIGIL_EBUSY;
	case ETIMEDOUT:
		return VIGIL_ETIMEDOUT;
	case EFBIG:
	case ENAMETOOLONG:
	case E2BIG:
	case EMSGSIZE:
		return VIGIL_ETOOBIG;
	case ENOSPC:
	case EDQUOT:
	case EMFILE:
	case ENFILE:
		return VIGIL_ELIMIT;
	case EPIPE:
	case ECONNRESET:
		return VIGIL_ECLOSED;
	default:
		return VIGIL_EIO;
	}
}

const char *
vigil_type_name(vigil_type t)
{
	switch (t) {
	case VIGIL_T_NUM:
		return "number";
	case VIGIL_T_STR:
		return "string";
	case VIGIL_T_BOOL:
		return "bool";
	case VIGIL_T_LIST:
		return "list";
	default:
		return "none";
	}
}

static const char *const decision_names[] = { "none", "allow", "review", "decline" };

const char *
vigil_decision_name(vigil_decision d)
{
	if ((unsigned)d > VIGIL_DECISION_DECLINE)
		return "none";
	return decision_names[d];
}

vigil_err
vigil_decision_parse(const char *s, vigil_decision *ret_d)
{
	for (unsigned i = VIGIL_DECISION_ALLOW; i <= VIGIL_DECISION_DECLINE; i++) {
		if (strcasecmp(s, decision_names[i]) == 0) {
			*ret_d = (vigil_decision)i;
			return VIGIL_OK;
		}
	}
	return VIGIL_EINVAL;
}

static const char *const channel_names[VIGIL_CHANNEL_COUNT_] = {
	"unknown", "pos", "ecom", "atm", "moto",
};

const char *
vigil_channel_name(vigil_channel c)
{
	if ((unsigned)c >= VIGIL_CHANNEL_COUNT_)
		return "unknown";
	return channel_names[c];
}

vigil_err
vigil_channel_parse(const char *s, vigil_channel *ret_c)
{
	for (unsigned i = 0; i < VIGIL_CHANNEL_COUNT_; i++) {
		/* The names are lower-case ASCII letters: a first byte that is
		 * not the name's own, in either case, cannot match. */
		if (((unsigned char)s[0] | 0x20) != (unsigned char)channel_names[i][0])
			continue;
		if (strcasecmp(s, channel_names[i]) == 0) {
			*ret_c = (vigil_channel)i;
			return VIGIL_OK;
		}
	}
	return VIGIL_EINVAL;
}

size_t
vigil_utf8_seq(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	uint32_t c = 0;
	size_t   n = 0, i;

	if (len == 0)
		return 0;
	if (*s < 0x80)
		return 1;
	if (*s >= 0xc2 && *s <= 0xdf) {
		n = 1;
		c = *s & 0x1f;
	} else if (*s >= 0xe0 && *s <= 0xef) {
		n = 2;
		c = *s & 0x0f;
	} else if (*s >= 0xf0 && *s <= 0xf4) {
		n = 3;
		c = *s & 0x07;
	}
	for (i = 1; n > 0 && i <= n && i < len && (s[i] & 0xc0) == 0x80; i++)
		c = c << 6 | (s[i] & 0x3f);
	if (n == 0 || i <= n || (n == 2 && c < 0x800) ||
	    (n == 3 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n + 1;
}

/*
 * Every byte that is a control character, or not part of a well-formed
 * UTF-8 sequence (overlong, surrogate, over U+10FFFF, or cut off by a
 * message's size cap or a %.40s), becomes '?'; only that byte, since the
 * next may start a good sequence.
 */
void
vigil_utf8_line(char *str)
{
	size_t len = strlen(str), i = 0;

	while (i < len) {
		size_t n = vigil_utf8_seq(str + i, len - i);

		if (n == 0 || (n == 1 && ((unsigned char)str[i] < 0x20 || str[i] == 0x7f))) {
			str[i++] = '?';
			continue;
		}
		i += n;
	}
}

void
vigil_errinfo_clear(vigil_errinfo *e)
{
	if (e == NULL)
		return;
	memset(e, 0, sizeof *e);
	e->offset = VIGIL_NOPOS;
}

void
vigil_errinfo_set(vigil_errinfo *e, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return;
	vigil_errinfo_clear(e);
	if (field != NULL)
		snprintf(e->field, sizeof e->field, "%s", field);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	vigil_utf8_line(e->msg);
}

const char *
vigil_errinfo_format(const vigil_errinfo *e, char *buf, size_t cap)
{
	char place[sizeof e->file + 48];
	int  flen = (int)strnlen(e->field, sizeof e->field);

	if (cap == 0)
		return buf;
	place[0] = '\0';
	if (e->file[0] == '\0')
		;
	else if (e->line > 0 && e->col > 0)
		snprintf(place, sizeof place, "%s:%" PRIu32 ":%" PRIu32 ": ", e->file, e->line, e->col);
	else if (e->line > 0)
		snprintf(place, sizeof place, "%s:%" PRIu32 ": ", e->file, e->line);
	else if (e->offset != VIGIL_NOPOS)
		snprintf(place, sizeof place, "%s:%" PRIu64 ": ", e->file, e->offset);
	else
		snprintf(place, sizeof place, "%s: ", e->file);
	snprintf(buf, cap, "%s%.*s%s%s", place, flen, e->field, flen > 0 ? ": " : "", e->msg);
	return buf;
}
