/* SPDX-License-Identifier: MIT */
/*
 * tools/csv/csv.c - streaming reader and writer of the vigil CSV format
 * (docs/csv.md). The tokenizer is a small RFC 4180 state machine over a
 * refillable block buffer: it copies one record's unquoted field bytes into
 * a capped record buffer (each field NUL-terminated), then the row builder
 * converts the fields it knows into a vigil_txn and checks each one, naming
 * the column in the error.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "csv.h"

#define CSV_BLOCK (64 * 1024)

static const char *const csv_col_names[CSV_COL_COUNT_] = {
	"txn_id", "event_time", "card_id", "merchant_id", "terminal_id",
	"amount", "currency", "mcc", "country", "channel", "device_id", "ip",
	"lat", "lon", "label", "label_time", "fraud_pattern",
};

static const bool csv_col_required[CSV_COL_COUNT_] = {
	[CSV_COL_TXN_ID] = true, [CSV_COL_EVENT_TIME] = true,
	[CSV_COL_CARD_ID] = true, [CSV_COL_MERCHANT_ID] = true,
	[CSV_COL_AMOUNT] = true,
};

typedef struct csv_field {
	uint32_t off, len; /* into rec; rec[off + len] == '\0' */
} csv_field;

struct csv_reader {
	char       name[256];
	FILE      *fp;       /* NULL for memory readers */
	bool       own_fp;
	char      *mem;      /* memory reader: the whole input */
	size_t     mem_len;
	/* block buffer */
	char      *blk;
	size_t     blk_len, blk_pos;
	bool       eof;
	bool       ioerr;
	/* current record */
	char      *rec;
	uint32_t   rec_len, rec_cap;
	uint64_t   rec_start;  /* stats.bytes where the current record starts */
	uint32_t   max_record; /* cap on its bytes as read (docs/csv.md, Caps) */
	bool       over_fields; /* the record went over max_fields (else bytes) */
	csv_field *fields;
	uint32_t   nfields, max_fields;
	/* header map: file column -> csv_col, or -1 (ignored) */
	int       *colmap;
	uint32_t   ncols;
	int        pos[CSV_COL_COUNT_]; /* csv_col -> file column, or -1 */
	char       default_currency[4];
	int        default_exp;      /* its exponent */
	char      *warning;
	uint64_t   line;     /* next physical line number (1-based) */
	uint64_t   rec_line; /* line where the current record starts */
	csv_stats  stats;
};

const char *
csv_col_name(csv_col col)
{
	if ((unsigned)col >= CSV_COL_COUNT_)
		return NULL;
	return csv_col_names[col];
}

static void csv_diagf(csv_diag *d, const char *file, uint64_t line, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Fills d: the file, the line (0: none), the column of a bad value (NULL:
 * the record, the header or the file as a whole; a header column is the
 * column) and the reason; printed
 * with vigil_errinfo_format as "FILE:LINE: COLUMN: reason", or "FILE:LINE:
 * reason" where the reason says what it is about ("record: ...",
 * "header: ..."). */
static void
csv_diagf(csv_diag *d, const char *file, uint64_t line, const char *field, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (d == NULL)
		return;
	vigil_errinfo_clear(d);
	n = strnlen(file, sizeof d->file - 1);
	memcpy(d->file, file, n);
	d->file[n] = '\0';
	if (field != NULL)
		snprintf(d->field, sizeof d->field, "%s", field);
	n = 0;
	if (line > UINT32_MAX) /* past what the shape holds: the number leads the reason */
		n = (size_t)snprintf(d->msg, sizeof d->msg, "line %" PRIu64 ": ", line);
	else
		d->line = (uint32_t)line;
	va_start(ap, fmt);
	vsnprintf(d->msg + n, sizeof d->msg - n, fmt, ap);
	va_end(ap);
}

/* A field value fit for a one-line message: at most 32 bytes, non-printable
 * bytes shown as '?', "..." when cut. */
static const char *
csv_show(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t n = 0, max = buflen > 4 ? buflen - 4 : 0;

	if (max > 32)
		max = 32;
	for (size_t i = 0; i < len && n < max; i++)
		buf[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (len > max && buflen >= n + 4) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* ---------------------------- input blocks ---------------------------- */

/* -1 at end of input (or after an I/O error, with rd->ioerr set). */
static inline int
csv_getc(csv_reader *rd)
{
	if (rd->blk_pos < rd->blk_len)
		return (unsigned char)rd->blk[rd->blk_pos++];
	if (rd->eof || rd->fp == NULL)
		return -1;
	rd->blk_len = fread(rd->blk, 1, CSV_BLOCK, rd->fp);
	rd->blk_pos = 0;
	if (rd->blk_len == 0) {
		rd->eof = true;
		if (ferror(rd->fp))
			rd->ioerr = true;
		return -1;
	}
	return (unsigned char)rd->blk[rd->blk_pos++];
}

static inline int
csv_peekc(csv_reader *rd)
{
	int c = csv_getc(rd);

	if (c >= 0)
		rd->blk_pos--;
	return c;
}

/* ---------------------------- tokenizer ---------------------------- */

typedef enum csv_tok_rv {
	CSV_TOK_RECORD = 0, /* a record is in rec/fields */
	CSV_TOK_END,        /* no more input */
	CSV_TOK_BAD,        /* malformed; skipped to the next line */
	CSV_TOK_TOOBIG,     /* over a cap; skipped to the end of the record */
} csv_tok_rv;

/* Skips to just after the next newline (recovery after a malformed record). */
static void
csv_skip_line(csv_reader *rd)
{
	int c;

	while ((c = csv_getc(rd)) >= 0) {
		rd->stats.bytes++;
		if (c == '\n') {
			rd->line++;
			rd->stats.lines++;
			return;
		}
	}
}

/* Whether the record read so far (every byte consumed since its start:
 * quotes, commas, quoted line breaks) is over the cap. The content kept in
 * rec is never longer, so rec holds it. */
static inline bool
csv_rec_over(const csv_reader *rd)
{
	return rd->stats.bytes - rd->rec_start > rd->max_record;
}

static bool
csv_rec_put(csv_reader *rd, char c, bool *over)
{
	if (csv_rec_over(rd) || rd->rec_len + 1 >= rd->rec_cap) {
		*over = true;
		return false;
	}
	rd->rec[rd->rec_len++] = c;
	return true;
}

static bool
csv_field_end(csv_reader *rd, uint32_t start, bool *over)
{
	if (*over)
		return false;
	if (csv_rec_over(rd)) { /* a closing quote or a comma took it over */
		*over = true;
		return false;
	}
	if (rd->nfields >= rd->max_fields) {
		rd->over_fields = true;
		*over = true;
		return false;
	}
	if (rd->rec_len + 1 > rd->rec_cap) {
		*over = true;
		return false;
	}
	rd->fields[rd->nfields].off = start;
	rd->fields[rd->nfields].len = rd->rec_len - start;
	rd->nfields++;
	rd->rec[rd->rec_len++] = '\0';
	return true;
}

/* The cap the record (what: "record", "header") on line went over. */
static void
csv_diag_over(const csv_reader *rd, uint64_t line, const char *what, csv_diag *reterr)
{
	if (rd->over_fields)
		csv_diagf(reterr, rd->name, line, NULL, "%s: more than %" PRIu32 " fields", what,
		    rd->max_fields);
	else
		csv_diagf(reterr, rd->name, line, NULL, "%s: longer than %" PRIu32 " bytes", what,
		    rd->max_record);
}

/* Bytes that end a run of plain field bytes: the delimiters, the quote. */
static const bool csv_special[256] = {
	[','] = true, ['\n'] = true, ['\r'] = true, ['"'] = true,
};

/*
 * Takes the plain bytes that follow in the current block at once (the same
 * as csv_rec_put byte by byte, caps included): most of a field. Stops at a
 * special byte or the end of the block, leaving it to csv_getc.
 */
static inline void
csv_run(csv_reader *rd, bool *over)
{
	const unsigned char *b = (const unsigned char *)rd->blk;
	size_t               i = rd->blk_pos, end = rd->blk_len, n;

#ifdef __SSE2__
	/* 16 bytes at a time while they are in the block */
	{
		const __m128i comma = _mm_set1_epi8(','), lf = _mm_set1_epi8('\n'),
		              cr = _mm_set1_epi8('\r'), quote = _mm_set1_epi8('"');

		for (; i + 16 <= end; i += 16) {
			__m128i  x = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
			__m128i  t = _mm_or_si128(
			    _mm_or_si128(_mm_cmpeq_epi8(x, comma), _mm_cmpeq_epi8(x, lf)),
			    _mm_or_si128(_mm_cmpeq_epi8(x, cr), _mm_cmpeq_epi8(x, quote)));
			unsigned mask = (unsigned)_mm_movemask_epi8(t);

			if (mask != 0) {
				i += (size_t)__builtin_ctz(mask);
				goto found;
			}
		}
	}
#endif
	while (i < end && !csv_special[b[i]])
		i++;
#ifdef __SSE2__
found:
#endif
	n = i - rd->blk_pos;
	if (n == 0)
		return;
	rd->stats.bytes += n;
	if (!*over) {
		if (csv_rec_over(rd) || (uint64_t)rd->rec_len + n >= rd->rec_cap) {
			*over = true;
		} else {
#ifdef __SSE2__
			/* a short run: one 16-byte move when both sides have room
			 * (bytes past the run are overwritten later or never read) */
			if (n <= 16 && rd->blk_pos + 16 <= end && (uint64_t)rd->rec_len + 16 <= rd->rec_cap)
				_mm_storeu_si128((__m128i *)(void *)(rd->rec + rd->rec_len),
				    _mm_loadu_si128((const __m128i *)(const void *)(b + rd->blk_pos)));
			else
#endif
				memcpy(rd->rec + rd->rec_len, rd->blk + rd->blk_pos, n);
			rd->rec_len += (uint32_t)n;
		}
	}
	rd->blk_pos = i;
}

/*
 * The usual record: a whole LF-terminated line inside the current block,
 * not blank, without quotes or CR, within the caps. Copied at once, its
 * commas turned into the fields' NULs: the fields, counts and positions the
 * state machine below would give. false: not such a line, nothing consumed.
 */
static bool
csv_line_fast(csv_reader *rd)
{
	const char *line = rd->blk + rd->blk_pos, *nl;
	size_t      avail = rd->blk_len - rd->blk_pos, len;
	uint32_t    start = 0, n = 0;

	if (avail == 0 || (nl = memchr(line, '\n', avail)) == NULL)
		return false;
	len = (size_t)(nl - line);
	if (len == 0 || len > rd->max_record || memchr(line, '"', len) != NULL ||
	    memchr(line, '\r', len) != NULL)
		return false;
	memcpy(rd->rec, line, len);
	rd->rec[len] = ',';
	for (uint32_t base = 0; base <= (uint32_t)len; base += 32) {
		uint32_t bits = 0; /* commas in rec[base .. base + 32) */

#ifdef __SSE2__
		if ((uint64_t)base + 32 <= len + 1) {
			const __m128i comma = _mm_set1_epi8(',');
			__m128i       x0 = _mm_loadu_si128((const __m128i *)(const void *)(rd->rec + base));
			__m128i       x1 = _mm_loadu_si128((const __m128i *)(const void *)(rd->rec + base + 16));

			bits = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x0, comma)) |
			    (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x1, comma)) << 16;
		} else
#endif
		{
			for (uint32_t k = 0; k < 32 && base + k <= len; k++)
				bits |= (uint32_t)(rd->rec[base + k] == ',') << k;
		}
		while (bits != 0) {
			uint32_t i = base + (uint32_t)__builtin_ctz(bits);

			bits &= bits - 1;
			if (n == rd->max_fields)
				return false;
			rd->fields[n].off = start;
			rd->fields[n].len = i - start;
			rd->rec[i] = '\0';
			n++;
			start = i + 1;
		}
	}
	rd->nfields = n;
	rd->rec_len = (uint32_t)len + 1;
	rd->rec_line = rd->line;
	rd->line++;
	rd->stats.lines++;
	rd->stats.bytes += len + 1;
	rd->blk_pos += len + 1;
	return true;
}

/*
 * record   = field *("," field) (CRLF | LF | EOF)
 * field    = quoted | *textchar
 * quoted   = DQUOTE *(textchar | "," | CR | LF | DQUOTE DQUOTE) DQUOTE
 * Blank lines are skipped. On CSV_TOK_BAD, *reason says what was wrong.
 */
static csv_tok_rv
csv_tokenize(csv_reader *rd, const char **reason)
{
	int c;
	bool over = false;
	uint32_t start;

	if (csv_line_fast(rd))
		return CSV_TOK_RECORD;
again:
	rd->rec_len = 0;
	rd->nfields = 0;
	rd->over_fields = false;
	c = csv_getc(rd);
	if (c < 0)
		return CSV_TOK_END;
	if (c == '\n' || (c == '\r' && csv_peekc(rd) == '\n')) { /* blank line */
		if (c == '\r') {
			csv_getc(rd);
			rd->stats.bytes++;
		}
		rd->stats.bytes++;
		rd->stats.lines++;
		rd->line++;
		goto again;
	}
	rd->rec_line = rd->line;
	rd->rec_start = rd->stats.bytes; /* c is counted below, as it is taken */
	for (;;) {
		start = rd->rec_len;
		if (c == '"') {
			rd->stats.bytes++;
			for (;;) {
				c = csv_getc(rd);
				if (c < 0) {
					*reason = "unterminated quoted field";
					return CSV_TOK_BAD;
				}
				rd->stats.bytes++;
				if (c == '"') {
					int n = csv_peekc(rd);
					if (n == '"') {
						csv_getc(rd);
						rd->stats.bytes++;
						if (!over)
							csv_rec_put(rd, '"', &over);
						continue;
					}
					break;
				}
				if (c == '\n') {
					rd->line++;
					rd->stats.lines++;
				}
				if (!over)
					csv_rec_put(rd, (char)c, &over);
			}
			c = csv_getc(rd);
			if (c >= 0 && c != ',' && c != '\n' && c != '\r') {
				rd->stats.bytes++;
				if (c != '\n')
					csv_skip_line(rd);
				*reason = "text after a closing quote";
				return CSV_TOK_BAD;
			}
		} else {
			while (c >= 0 && c != ',' && c != '\n' && c != '\r') {
				rd->stats.bytes++;
				if (c == '"') {
					csv_skip_line(rd);
					*reason = "quote inside an unquoted field";
					return CSV_TOK_BAD;
				}
				if (!over)
					csv_rec_put(rd, (char)c, &over);
				csv_run(rd, &over);
				c = csv_getc(rd);
			}
		}
		csv_field_end(rd, start, &over);
		if (c < 0)
			break;
		rd->stats.bytes++;
		if (c == ',') {
			c = csv_getc(rd);
			if (c < 0) { /* "a,b,<EOF>": a last empty field */
				csv_field_end(rd, rd->rec_len, &over);
				break;
			}
			continue;
		}
		if (c == '\r') {
			if (csv_peekc(rd) == '\n') {
				csv_getc(rd);
				rd->stats.bytes++;
			} else {
				csv_skip_line(rd);
				*reason = "carriage return inside an unquoted field";
				return CSV_TOK_BAD;
			}
		}
		/* end of line */
		rd->line++;
		rd->stats.lines++;
		break;
	}
	if (c < 0) { /* last line without a newline still counts as a line */
		rd->line++;
		rd->stats.lines++;
	}
	return over ? CSV_TOK_TOOBIG : CSV_TOK_RECORD;
}

/* ---------------------------- opening ---------------------------- */

static void
csv_reader_free(csv_reader *rd)
{
	if (rd == NULL)
		return;
	if (rd->fp != NULL && rd->own_fp)
		fclose(rd->fp);
	free(rd->mem);
	if (rd->mem == NULL)
		free(rd->blk);
	free(rd->rec);
	free(rd->fields);
	free(rd->colmap);
	free(rd->warning);
	free(rd);
}

void
csv_reader_close(csv_reader *rd)
{
	csv_reader_free(rd);
}

static vigil_err
csv_reader_alloc(const char *name, const csv_opts *opts, csv_reader **ret_rd, csv_diag *reterr)
{
	csv_reader *rd;
	uint32_t rec_cap = CSV_DEFAULT_MAX_RECORD, max_fields = CSV_DEFAULT_MAX_FIELDS;
	const char *cur = "EUR";

	if (opts != NULL) {
		if (opts->max_record_bytes != 0)
			rec_cap = opts->max_record_bytes;
		if (opts->max_fields != 0)
			max_fields = opts->max_fields;
		if (opts->default_currency != NULL)
			cur = opts->default_currency;
	}
	if (rec_cap > CSV_HARD_MAX_RECORD)
		rec_cap = CSV_HARD_MAX_RECORD;
	if (max_fields > CSV_HARD_MAX_FIELDS)
		max_fields = CSV_HARD_MAX_FIELDS;
	if (strlen(cur) != 3 || vigil_currency_exponent(cur) < 0) {
		csv_diagf(reterr, name, 0, NULL, "default currency \"%s\" is not an ISO 4217 code", cur);
		return VIGIL_EINVAL;
	}
	rd = calloc(1, sizeof *rd);
	if (rd == NULL)
		goto nomem;
	snprintf(rd->name, sizeof rd->name, "%s", name);
	memcpy(rd->default_currency, cur, 4);
	rd->default_exp = vigil_currency_exponent(cur);
	rd->max_record = rec_cap;
	rd->rec_cap = rec_cap + 1; /* content bytes, a NUL per field (below) */
	rd->rec = malloc(rd->rec_cap + max_fields);
	rd->rec_cap += max_fields; /* a NUL per field */
	rd->max_fields = max_fields;
	rd->fields = calloc(max_fields, sizeof *rd->fields);
	rd->line = 1;
	if (rd->rec == NULL || rd->fields == NULL)
		goto nomem;
	*ret_rd = rd;
	return VIGIL_OK;
nomem:
	csv_reader_free(rd);
	csv_diagf(reterr, name, 0, NULL, "out of memory");
	return VIGIL_ENOMEM;
}

/* Maps header names to columns; the header is in rec/fields. */
static vigil_err
csv_header_map(csv_reader *rd, csv_diag *reterr)
{
	char unknown[200] = "";
	size_t ulen = 0;
	uint32_t nunknown = 0;

	for (int i = 0; i < CSV_COL_COUNT_; i++)
		rd->pos[i] = -1;
	rd->ncols = rd->nfields;
	rd->colmap = calloc(rd->ncols, sizeof *rd->colmap);
	if (rd->colmap == NULL) {
		csv_diagf(reterr, rd->name, 0, NULL, "out of memory");
		return VIGIL_ENOMEM;
	}
	for (uint32_t f = 0; f < rd->nfields; f++) {
		const char *h = rd->rec + rd->fields[f].off;
		size_t hl = rd->fields[f].len;
		int col = -1;
		char shown[48];

		for (int i = 0; i < CSV_COL_COUNT_; i++) {
			if (strlen(csv_col_names[i]) == hl && strncasecmp(h, csv_col_names[i], hl) == 0) {
				col = i;
				break;
			}
		}
		rd->colmap[f] = col;
		if (col >= 0) {
			if (rd->pos[col] >= 0) {
				csv_diagf(reterr, rd->name, 1, csv_col_names[col],
				    "the header names this column twice");
				return VIGIL_ESYNTAX;
			}
			rd->pos[col] = (int)f;
			continue;
		}
		csv_show(h, hl, shown, sizeof shown);
		if (hl == 0)
			snprintf(shown, sizeof shown, "(empty)");
		nunknown++;
		if (ulen < sizeof unknown - 1)
			ulen += (size_t)snprintf(unknown + ulen, sizeof unknown - ulen, "%s%s",
			    nunknown > 1 ? ", " : "", shown);
	}
	for (int i = 0; i < CSV_COL_COUNT_; i++) {
		if (csv_col_required[i] && rd->pos[i] < 0) {
			csv_diagf(reterr, rd->name, 1, csv_col_names[i],
			    "required column missing from the header");
			return VIGIL_ESYNTAX;
		}
	}
	if (nunknown > 0) {
		size_t n = strlen(rd->name) + ulen + 64;
		rd->warning = malloc(n);
		if (rd->warning == NULL) {
			csv_diagf(reterr, rd->name, 0, NULL, "out of memory");
			return VIGIL_ENOMEM;
		}
		snprintf(rd->warning, n, "%s:1: header: ignoring %" PRIu32 " unknown column%s: %s",
		    rd->name, nunknown, nunknown > 1 ? "s" : "", unknown);
	}
	return VIGIL_OK;
}

/* Skips a UTF-8 byte order mark at the start of the input, before the
 * tokenizer sees it: a quoted first column name ("\xEF\xBB\xBF\"txn_id\"",
 * as spreadsheets write it) is then a quoted field, not a quote inside an
 * unquoted one. The first block holds at least 3 bytes unless the input
 * is shorter. */
static void
csv_skip_bom(csv_reader *rd)
{
	if (csv_peekc(rd) < 0 || rd->blk_len - rd->blk_pos < 3 ||
	    memcmp(rd->blk + rd->blk_pos, "\xEF\xBB\xBF", 3) != 0)
		return;
	rd->blk_pos += 3;
	rd->stats.bytes += 3;
}

static vigil_err
csv_read_header(csv_reader *rd, csv_diag *reterr)
{
	const char *reason = NULL;
	csv_tok_rv t;

	csv_skip_bom(rd);
	t = csv_tokenize(rd, &reason);
	if (rd->ioerr) {
		csv_diagf(reterr, rd->name, 0, NULL, "read error: %s", strerror(errno));
		return VIGIL_EIO;
	}
	switch (t) {
	case CSV_TOK_END:
		csv_diagf(reterr, rd->name, 1, NULL, "header: empty file (a header row is required)");
		return VIGIL_ESYNTAX;
	case CSV_TOK_BAD:
		csv_diagf(reterr, rd->name, 1, NULL, "header: %s", reason);
		return VIGIL_ESYNTAX;
	case CSV_TOK_TOOBIG:
		csv_diag_over(rd, 1, "header", reterr);
		return VIGIL_ETOOBIG;
	case CSV_TOK_RECORD:
		break;
	}
	return csv_header_map(rd, reterr);
}

vigil_err
csv_reader_open(const char *path, const csv_opts *opts, csv_reader **ret_rd, csv_diag *reterr)
{
	csv_reader *rd = NULL;
	vigil_err rv;

	rv = csv_reader_alloc(path, opts, &rd, reterr);
	if (rv != VIGIL_OK)
		return rv;
	rd->blk = malloc(CSV_BLOCK);
	if (rd->blk == NULL) {
		csv_diagf(reterr, path, 0, NULL, "out of memory");
		rv = VIGIL_ENOMEM;
		goto out;
	}
	if (strcmp(path, "-") == 0) {
		rd->fp = stdin;
	} else {
		rd->fp = fopen(path, "rb");
		rd->own_fp = true;
		if (rd->fp == NULL) {
			int e = errno;
			csv_diagf(reterr, path, 0, NULL, "cannot open: %s", strerror(e));
			rv = e == ENOENT ? VIGIL_ENOTFOUND : VIGIL_EIO;
			goto out;
		}
	}
	rv = csv_read_header(rd, reterr);
	if (rv != VIGIL_OK)
		goto out;
	*ret_rd = rd;
	rd = NULL;
out:
	csv_reader_free(rd);
	return rv;
}

vigil_err
csv_reader_open_mem(const char *name, const void *buf, size_t len, const csv_opts *opts,
    csv_reader **ret_rd, csv_diag *reterr)
{
	csv_reader *rd = NULL;
	vigil_err rv;

	rv = csv_reader_alloc(name, opts, &rd, reterr);
	if (rv != VIGIL_OK)
		return rv;
	rd->mem = malloc(len > 0 ? len : 1);
	if (rd->mem == NULL) {
		csv_diagf(reterr, name, 0, NULL, "out of memory");
		rv = VIGIL_ENOMEM;
		goto out;
	}
	if (len > 0)
		memcpy(rd->mem, buf, len);
	rd->mem_len = len;
	rd->blk = rd->mem;
	rd->blk_len = len;
	rd->eof = true;
	rv = csv_read_header(rd, reterr);
	if (rv != VIGIL_OK)
		goto out;
	*ret_rd = rd;
	rd = NULL;
out:
	csv_reader_free(rd);
	return rv;
}

const char *
csv_reader_warning(const csv_reader *rd)
{
	return rd->warning;
}

bool
csv_reader_has_col(const csv_reader *rd, csv_col col)
{
	return (unsigned)col < CSV_COL_COUNT_ && rd->pos[col] >= 0;
}

void
csv_reader_get_stats(const csv_reader *rd, csv_stats *ret_stats)
{
	*ret_stats = rd->stats;
}

/* ---------------------------- values ---------------------------- */

vigil_err
csv_amount_parse(const char *s, size_t len, int exp, int64_t *ret_minor, const char **reterr_reason)
{
	static const int64_t pow10[] = { 1, 10, 100, 1000, 10000 };
	const int64_t limit = 1000000000000000LL; /* 10^15 minor units */
	int64_t whole = 0, frac = 0;
	size_t i = 0;
	int nwhole = 0, nfrac = 0;

	if (exp < 0 || exp > 4) {
		*reterr_reason = "unsupported currency exponent";
		return VIGIL_EINVAL;
	}
	if (len == 0) {
		*reterr_reason = "required field is empty";
		return VIGIL_EINVAL;
	}
	if (s[0] == '-') {
		*reterr_reason = "negative amounts are not allowed";
		return VIGIL_EINVAL;
	}
	if (s[0] == '+')
		i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, nwhole++) {
		if (whole > limit) {
			*reterr_reason = "too large (at most 10^15 minor units)";
			return VIGIL_EINVAL;
		}
		whole = whole * 10 + (s[i] - '0');
	}
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			if (nfrac < exp) {
				frac = frac * 10 + (s[i] - '0');
				nfrac++;
			} else if (s[i] != '0') {
				*reterr_reason = exp == 0
				    ? "this currency has no decimal places"
				    : "more decimal places than the currency has";
				return VIGIL_EINVAL;
			}
		}
		if (nwhole == 0 && i == len && s[len - 1] == '.') {
			*reterr_reason = "not a decimal number";
			return VIGIL_EINVAL;
		}
	} else if (nwhole == 0) {
		*reterr_reason = "not a decimal number";
		return VIGIL_EINVAL;
	}
	if (i != len) {
		*reterr_reason = "not a decimal number";
		return VIGIL_EINVAL;
	}
	if (whole > limit / pow10[exp]) {
		*reterr_reason = "too large (at most 10^15 minor units)";
		return VIGIL_EINVAL;
	}
	frac *= pow10[exp - nfrac];
	whole = whole * pow10[exp] + frac;
	if (whole >= limit) {
		*reterr_reason = "too large (at most 10^15 minor units)";
		return VIGIL_EINVAL;
	}
	*ret_minor = whole;
	return VIGIL_OK;
}

void
csv_amount_format(int64_t minor, int exp, char *buf, size_t buflen)
{
	static const int64_t pow10[] = { 1, 10, 100, 1000, 10000 };
	bool neg = minor < 0;
	uint64_t m = neg ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;

	if (exp <= 0 || exp > 4) {
		snprintf(buf, buflen, "%s%" PRIu64, neg ? "-" : "", m);
		return;
	}
	snprintf(buf, buflen, "%s%" PRIu64 ".%0*" PRIu64, neg ? "-" : "",
	    m / (uint64_t)pow10[exp], exp, m % (uint64_t)pow10[exp]);
}

/* The id charset of vigil_txn_validate: printable ASCII without spaces,
 * quotes, commas or backslashes. */
static const char *
csv_id_check(const char *s, size_t len, size_t max)
{
	if (len > max)
		return "longer than the cap";
	if (!vigil_id_chars_ok(s, len))
		return "contains a space, quote, comma, backslash or non-printable byte";
	return NULL;
}

static vigil_err csv_bad(csv_reader *rd, uint64_t line, csv_diag *reterr, const char *col,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static vigil_err
csv_bad(csv_reader *rd, uint64_t line, csv_diag *reterr, const char *col,
    const char *fmt, ...)
{
	char reason[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	if (strcmp(col, "record") == 0) /* not one field: the message says what it is about */
		csv_diagf(reterr, rd->name, line, NULL, "record: %s", reason);
	else
		csv_diagf(reterr, rd->name, line, col, "%s", reason);
	rd->stats.bad_rows++;
	return VIGIL_EINVAL;
}

/*
 * The common short form of a decimal, "-?D+(.D+)?" with at most 15 digits,
 * converted exactly as strtod does: the digits make an integer m < 10^15,
 * exact in a double, 10^k (k <= 15) is exact too, and one IEEE division
 * rounds m / 10^k correctly, which is strtod's result. false: not that
 * form (the caller uses strtod).
 */
static bool
csv_short_decimal(const char *s, double *ret)
{
	static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
		1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
	bool     neg = *s == '-';
	uint64_t m = 0;
	int      nd = 0, nf = 0;
	double   v;

	s += neg;
	for (; *s >= '0' && *s <= '9'; s++, nd++)
		m = m * 10 + (uint64_t)(*s - '0');
	if (nd == 0)
		return false;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, nf++)
			m = m * 10 + (uint64_t)(*s - '0');
		if (nf == 0)
			return false;
	}
	if (*s != '\0' || nd + nf > 15)
		return false;
	v = (double)m / p10[nf];
	*ret = neg ? -v : v;
	return true;
}

static bool
csv_parse_double(const char *s, double lo, double hi, double *ret)
{
	char *end;
	double v;

	if (*s == '\0')
		return false;
	if (csv_short_decimal(s, &v)) {
		if (v < lo || v > hi)
			return false;
		*ret = v;
		return true;
	}
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || errno != 0 || !isfinite(v) || v < lo || v > hi)
		return false;
	*ret = v;
	return true;
}

/* Builds a row from the tokenized record. */
static vigil_err
csv_row_build(csv_reader *rd, uint64_t line, csv_row *row, csv_diag *reterr)
{
	const char *v[CSV_COL_COUNT_];
	uint32_t l[CSV_COL_COUNT_];
	char shown[48];
	const char *why;
	int exp;

	if (rd->nfields != rd->ncols)
		return csv_bad(rd, line, reterr, "record",
		    "%" PRIu32 " field%s, the header has %" PRIu32, rd->nfields,
		    rd->nfields == 1 ? "" : "s", rd->ncols);
	for (int i = 0; i < CSV_COL_COUNT_; i++) {
		if (rd->pos[i] >= 0) {
			v[i] = rd->rec + rd->fields[rd->pos[i]].off;
			l[i] = rd->fields[rd->pos[i]].len;
		} else {
			v[i] = "";
			l[i] = 0;
		}
	}
	memset(&row->txn, 0, sizeof row->txn);
	row->line = line;
	row->label = CSV_LABEL_NONE;
	row->label_time_ms = 0;
	row->fraud_pattern[0] = '\0';

	/* ids */
	static const struct { csv_col col; size_t off; size_t max; } ids[] = {
		{ CSV_COL_TXN_ID, offsetof(vigil_txn, txn_id), VIGIL_ID_MAX },
		{ CSV_COL_CARD_ID, offsetof(vigil_txn, card_id), VIGIL_ID_MAX },
		{ CSV_COL_MERCHANT_ID, offsetof(vigil_txn, merchant_id), VIGIL_ID_MAX },
		{ CSV_COL_TERMINAL_ID, offsetof(vigil_txn, terminal_id), VIGIL_ID_MAX },
		{ CSV_COL_DEVICE_ID, offsetof(vigil_txn, device_id), VIGIL_ID_MAX },
		{ CSV_COL_IP, offsetof(vigil_txn, ip), VIGIL_IP_MAX },
	};
	for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
		csv_col c = ids[k].col;
		if (l[c] == 0) {
			if (csv_col_required[c])
				return csv_bad(rd, line, reterr, csv_col_names[c], "required field is empty");
			continue;
		}
		if (l[c] > ids[k].max)
			return csv_bad(rd, line, reterr, csv_col_names[c], "longer than %zu bytes",
			    ids[k].max);
		why = csv_id_check(v[c], l[c], ids[k].max);
		if (why != NULL)
			return csv_bad(rd, line, reterr, csv_col_names[c], "%s", why);
		memcpy((char *)&row->txn + ids[k].off, v[c], l[c] + 1);
	}

	/* event_time */
	if (l[CSV_COL_EVENT_TIME] == 0)
		return csv_bad(rd, line, reterr, "event_time", "required field is empty");
	if (vigil_time_parse_rfc3339(v[CSV_COL_EVENT_TIME], &row->txn.event_time_ms) != VIGIL_OK)
		return csv_bad(rd, line, reterr, "event_time", "\"%s\" is not an RFC 3339 time",
		    csv_show(v[CSV_COL_EVENT_TIME], l[CSV_COL_EVENT_TIME], shown, sizeof shown));
	if (row->txn.event_time_ms < 946684800000LL || row->txn.event_time_ms >= 4102444800000LL)
		return csv_bad(rd, line, reterr, "event_time", "\"%s\" is outside [2000-01-01, 2100-01-01)",
		    csv_show(v[CSV_COL_EVENT_TIME], l[CSV_COL_EVENT_TIME], shown, sizeof shown));

	/* currency, then amount in its exponent */
	if (l[CSV_COL_CURRENCY] == 0) {
		memcpy(row->txn.currency, rd->default_currency, 4);
		exp = rd->default_exp;
	} else {
		char cur[4];
		if (l[CSV_COL_CURRENCY] != 3)
			return csv_bad(rd, line, reterr, "currency", "\"%s\" is not an ISO 4217 code",
			    csv_show(v[CSV_COL_CURRENCY], l[CSV_COL_CURRENCY], shown, sizeof shown));
		for (int i = 0; i < 3; i++)
			cur[i] = (char)toupper((unsigned char)v[CSV_COL_CURRENCY][i]);
		cur[3] = '\0';
		exp = vigil_currency_exponent(cur);
		if (exp < 0)
			return csv_bad(rd, line, reterr, "currency", "\"%s\" is not an ISO 4217 code",
			    csv_show(v[CSV_COL_CURRENCY], l[CSV_COL_CURRENCY], shown, sizeof shown));
		memcpy(row->txn.currency, cur, 4);
	}
	if (csv_amount_parse(v[CSV_COL_AMOUNT], l[CSV_COL_AMOUNT], exp, &row->txn.amount_minor,
	    &why) != VIGIL_OK) {
		if (l[CSV_COL_AMOUNT] == 0)
			return csv_bad(rd, line, reterr, "amount", "%s", why);
		csv_show(v[CSV_COL_AMOUNT], l[CSV_COL_AMOUNT], shown, sizeof shown);
		if (strstr(why, "decimal places") != NULL)
			return csv_bad(rd, line, reterr, "amount", "\"%s\": %s (%s has %d)",
			    shown, why, row->txn.currency, exp);
		return csv_bad(rd, line, reterr, "amount", "\"%s\": %s", shown, why);
	}

	/* mcc */
	if (l[CSV_COL_MCC] > 0) {
		uint32_t m = 0;
		bool ok = l[CSV_COL_MCC] <= 4;
		for (uint32_t i = 0; ok && i < l[CSV_COL_MCC]; i++) {
			char ch = v[CSV_COL_MCC][i];
			ok = ch >= '0' && ch <= '9';
			m = m * 10 + (uint32_t)(ch - '0');
		}
		if (!ok)
			return csv_bad(rd, line, reterr, "mcc", "\"%s\" is not an integer in 0..9999",
			    csv_show(v[CSV_COL_MCC], l[CSV_COL_MCC], shown, sizeof shown));
		row->txn.mcc = m;
	}

	/* country */
	if (l[CSV_COL_COUNTRY] > 0) {
		const char *c = v[CSV_COL_COUNTRY];
		if (l[CSV_COL_COUNTRY] != 2 || !isupper((unsigned char)c[0]) ||
		    !isupper((unsigned char)c[1]) || (unsigned char)c[0] >= 0x80 ||
		    (unsigned char)c[1] >= 0x80)
			return csv_bad(rd, line, reterr, "country",
			    "\"%s\" is not two upper-case letters (ISO 3166-1 alpha-2)",
			    csv_show(c, l[CSV_COL_COUNTRY], shown, sizeof shown));
		memcpy(row->txn.country, c, 3);
	}

	/* channel */
	if (l[CSV_COL_CHANNEL] > 0) {
		vigil_channel ch;
		if (vigil_channel_parse(v[CSV_COL_CHANNEL], &ch) != VIGIL_OK)
			return csv_bad(rd, line, reterr, "channel",
			    "\"%s\" is not one of pos, ecom, atm, moto, unknown",
			    csv_show(v[CSV_COL_CHANNEL], l[CSV_COL_CHANNEL], shown, sizeof shown));
		row->txn.channel = (uint8_t)ch;
	}

	/* location: both or neither */
	if (l[CSV_COL_LAT] > 0 || l[CSV_COL_LON] > 0) {
		if (l[CSV_COL_LON] == 0)
			return csv_bad(rd, line, reterr, "lon", "required when lat is given");
		if (l[CSV_COL_LAT] == 0)
			return csv_bad(rd, line, reterr, "lat", "required when lon is given");
		if (!csv_parse_double(v[CSV_COL_LAT], -90.0, 90.0, &row->txn.lat))
			return csv_bad(rd, line, reterr, "lat", "\"%s\" is not a number in [-90, 90]",
			    csv_show(v[CSV_COL_LAT], l[CSV_COL_LAT], shown, sizeof shown));
		if (!csv_parse_double(v[CSV_COL_LON], -180.0, 180.0, &row->txn.lon))
			return csv_bad(rd, line, reterr, "lon", "\"%s\" is not a number in [-180, 180]",
			    csv_show(v[CSV_COL_LON], l[CSV_COL_LON], shown, sizeof shown));
		row->txn.has_location = true;
	}

	/* label, label_time, fraud_pattern */
	if (l[CSV_COL_LABEL] > 0) {
		if (l[CSV_COL_LABEL] == 1 && v[CSV_COL_LABEL][0] == '1')
			row->label = CSV_LABEL_FRAUD;
		else if (l[CSV_COL_LABEL] == 1 && v[CSV_COL_LABEL][0] == '0')
			row->label = CSV_LABEL_LEGIT;
		else
			return csv_bad(rd, line, reterr, "label", "\"%s\" is not 1, 0 or empty",
			    csv_show(v[CSV_COL_LABEL], l[CSV_COL_LABEL], shown, sizeof shown));
	}
	if (l[CSV_COL_LABEL_TIME] > 0) {
		if (vigil_time_parse_rfc3339(v[CSV_COL_LABEL_TIME], &row->label_time_ms) != VIGIL_OK)
			return csv_bad(rd, line, reterr, "label_time", "\"%s\" is not an RFC 3339 time",
			    csv_show(v[CSV_COL_LABEL_TIME], l[CSV_COL_LABEL_TIME], shown, sizeof shown));
		if (row->label == CSV_LABEL_NONE)
			return csv_bad(rd, line, reterr, "label_time", "given without a label");
		if (row->label_time_ms < row->txn.event_time_ms)
			return csv_bad(rd, line, reterr, "label_time", "earlier than event_time");
	}
	if (l[CSV_COL_FRAUD_PATTERN] > 0) {
		if (l[CSV_COL_FRAUD_PATTERN] > CSV_PATTERN_MAX)
			return csv_bad(rd, line, reterr, "fraud_pattern", "longer than %d bytes",
			    CSV_PATTERN_MAX);
		why = csv_id_check(v[CSV_COL_FRAUD_PATTERN], l[CSV_COL_FRAUD_PATTERN], CSV_PATTERN_MAX);
		if (why != NULL)
			return csv_bad(rd, line, reterr, "fraud_pattern", "%s", why);
		memcpy(row->fraud_pattern, v[CSV_COL_FRAUD_PATTERN], l[CSV_COL_FRAUD_PATTERN] + 1);
	}

	/* The shared semantic checks (time range, ...): same rules as the server. */
	{
		vigil_errinfo ei;

		if (vigil_txn_validate(&row->txn, &ei) != VIGIL_OK)
			return csv_bad(rd, line, reterr, ei.field[0] != '\0' ? ei.field : "record", "%s",
			    ei.msg[0] != '\0' ? ei.msg : "invalid");
	}
	return VIGIL_OK;
}

vigil_err
csv_reader_next(csv_reader *rd, csv_row *ret_row, csv_diag *reterr)
{
	const char *reason = NULL;
	uint64_t line;
	csv_tok_rv t;

	t = csv_tokenize(rd, &reason);
	line = rd->rec_line; /* after skipped blank lines */
	if (rd->ioerr) {
		csv_diagf(reterr, rd->name, rd->line, NULL, "read error: %s", strerror(errno));
		return VIGIL_EIO;
	}
	switch (t) {
	case CSV_TOK_END:
		return VIGIL_ENOTFOUND;
	case CSV_TOK_BAD:
		return csv_bad(rd, line, reterr, "record", "%s", reason);
	case CSV_TOK_TOOBIG:
		csv_diag_over(rd, line, "record", reterr);
		rd->stats.bad_rows++;
		return VIGIL_ETOOBIG;
	case CSV_TOK_RECORD:
		break;
	}
	if (csv_row_build(rd, line, ret_row, reterr) != VIGIL_OK)
		return VIGIL_EINVAL;
	rd->stats.rows++;
	return VIGIL_OK;
}

/* ---------------------------- writing ---------------------------- */

const char *
csv_header_line(void)
{
	return "txn_id,event_time,card_id,merchant_id,terminal_id,amount,currency,mcc,"
	    "country,channel,device_id,ip,lat,lon,label,label_time,fraud_pattern\n";
}

typedef struct csv_out {
	char  *p;
	size_t left;
	bool   full;
} csv_out;

static void
csv_put(csv_out *o, const char *s, size_t n)
{
	if (o->full || n >= o->left) {
		o->full = true;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
	o->left -= n;
}

/* Writes s quoted if it needs to be (comma, quote, CR or LF). */
static void
csv_put_field(csv_out *o, const char *s, bool comma)
{
	size_t n = strlen(s);

	if (strpbrk(s, ",\"\r\n") == NULL) {
		csv_put(o, s, n);
	} else {
		csv_put(o, "\"", 1);
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '"')
				csv_put(o, "\"", 1);
			csv_put(o, s + i, 1);
		}
		csv_put(o, "\"", 1);
	}
	if (comma)
		csv_put(o, ",", 1);
}

size_t
csv_row_format(const csv_row *row, char *buf, size_t buflen)
{
	const vigil_txn *t = &row->txn;
	csv_out o = { buf, buflen, false };
	char tmp[64];
	int exp = vigil_currency_exponent(t->currency);

	csv_put_field(&o, t->txn_id, true);
	vigil_time_format_rfc3339(t->event_time_ms, tmp, sizeof tmp);
	csv_put_field(&o, tmp, true);
	csv_put_field(&o, t->card_id, true);
	csv_put_field(&o, t->merchant_id, true);
	csv_put_field(&o, t->terminal_id, true);
	csv_amount_format(t->amount_minor, exp < 0 ? 2 : exp, tmp, sizeof tmp);
	csv_put_field(&o, tmp, true);
	csv_put_field(&o, t->currency, true);
	if (t->mcc != 0)
		snprintf(tmp, sizeof tmp, "%" PRIu32, t->mcc);
	else
		tmp[0] = '\0';
	csv_put_field(&o, tmp, true);
	csv_put_field(&o, t->country, true);
	csv_put_field(&o, t->channel == VIGIL_CHANNEL_UNKNOWN ? ""
	    : vigil_channel_name((vigil_channel)t->channel), true);
	csv_put_field(&o, t->device_id, true);
	csv_put_field(&o, t->ip, true);
	if (t->has_location) {
		snprintf(tmp, sizeof tmp, "%.5f,%.5f,", t->lat, t->lon);
		csv_put(&o, tmp, strlen(tmp));
	} else {
		csv_put(&o, ",,", 2);
	}
	csv_put_field(&o, row->label == CSV_LABEL_FRAUD ? "1"
	    : row->label == CSV_LABEL_LEGIT ? "0" : "", true);
	if (row->label_time_ms != 0)
		vigil_time_format_rfc3339(row->label_time_ms, tmp, sizeof tmp);
	else
		tmp[0] = '\0';
	csv_put_field(&o, tmp, true);
	csv_put_field(&o, row->fraud_pattern, false);
	csv_put(&o, "\n", 1);
	if (o.full)
		return 0;
	*o.p = '\0';
	return buflen - o.left;
}
