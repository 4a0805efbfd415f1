/* SPDX-License-Identifier: MIT */
/*
 * common/err.c - texts and names of vigil_err, decisions and channels, and
 * the errno translation used at component boundaries.
 */
#include <errno.h>
#include <strings.h>

#include "vigil.h"

static const struct {
	const char *name;
	const char *text;
} err_table[VIGIL_ERR_COUNT_] = {
	[VIGIL_OK]        = { "OK", "success" },
	[VIGIL_EINVAL]    = { "EINVAL", "invalid argument" },
	[VIGIL_ENOMEM]    = { "ENOMEM", "out of memory" },
	[VIGIL_EIO]       = { "EIO", "input/output error" },
	[VIGIL_ECORRUPT]  = { "ECORRUPT", "corrupt data" },
	[VIGIL_EVERSION]  = { "EVERSION", "unknown format version" },
	[VIGIL_ETOOBIG]   = { "ETOOBIG", "too big" },
	[VIGIL_ESYNTAX]   = { "ESYNTAX", "syntax error" },
	[VIGIL_ETYPE]     = { "ETYPE", "type error" },
	[VIGIL_ENOTFOUND] = { "ENOTFOUND", "not found" },
	[VIGIL_EEXIST]    = { "EEXIST", "already exists" },
	[VIGIL_EBUSY]     = { "EBUSY", "busy (locked by another process)" },
	[VIGIL_ELIMIT]    = { "ELIMIT", "resource limit reached" },
	[VIGIL_ETIMEDOUT] = { "ETIMEDOUT", "timed out" },
	[VIGIL_ECLOSED]   = { "ECLOSED", "closed" },
	[VIGIL_EPROTO]    = { "EPROTO", "protocol error (malformed message)" },
	[VIGIL_EAGAIN]    = { "EAGAIN", "try again" },
	[VIGIL_EINTERNAL] = { "EINTERNAL", "internal error" },
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
