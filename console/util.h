/* SPDX-License-Identifier: MIT */
/*
 * console/util.h - the small helpers of util.c: JSON of amounts, times
 * and labels, time parsing, files read and written atomically, list files,
 * a rule's mode clause edited as text, what a read of the archive passed
 * over, and the LMDB sweeps in steps of the console's indexes.
 */
#ifndef VIGIL_CONSOLE_UTIL_H
#define VIGIL_CONSOLE_UTIL_H

#include <jansson.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil.h"

/* util */
/* JSON of the pages: an amount in its currency's units ("220.50"), an
 * RFC 3339 time, a label ("fraud", "legit", or null for -1). */
json_t     *con_json_amount(int64_t minor, const char *currency);
/* The 0-100 score as every page shows it: 3 decimals (97.3, not the float's
 * 97.30000305, nor an integer). */
double      con_score_shown(double score);
json_t     *con_json_time(int64_t ms);
json_t     *con_json_label(int label);
/* Parses "YYYY-MM-DD" or RFC 3339 into ms. */
vigil_err con_time_parse(const char *s, int64_t *ret_ms);
/* Reads a whole regular file (malloc'd, NUL-terminated) of at most max
 * bytes: VIGIL_ETOOBIG if larger, VIGIL_EINVAL if not a regular file (a
 * FIFO is not waited on), else the open's or read's error. */
vigil_err con_file_read(const char *path, size_t max, char **ret_buf, size_t *ret_len);
/*
 * A state file of JSON (lists.json, proposal.json) of at most max bytes
 * into *ret_o. VIGIL_ENOTFOUND: no file. Otherwise a failure fills
 * *reterr_ei with the file and "cannot read WHAT: ..." or "WHAT does (do,
 * when plural) not parse: ..." at jansson's line:col.
 */
vigil_err con_json_file_load(const char *path, size_t max, const char *what, bool plural,
    json_t **ret_o, vigil_errinfo *reterr_ei);
/* Names path in *ei and logs "vigil-console: AREA: EI (CONSEQUENCE)" once,
 * until a load that succeeds clears *said. */
void con_say_once(bool *said, const char *area, vigil_errinfo *ei, const char *path,
    const char *consequence);
/*
 * Sets the `mode` clause of the rule that starts on line `line` (1-based) of
 * text[0..len): the word after its first `mode` replaced by mode, or `mode
 * MODE` added before its closing brace (on a line of its own when the brace
 * is). Strings and # comments are skipped. Only scans: the caller compiles
 * the result to make sure of it (editor.c). VIGIL_OK: *ret_text malloc'd,
 * NUL-terminated, *ret_len bytes; VIGIL_ENOTFOUND: no rule body from that
 * line on; VIGIL_ENOMEM.
 */
vigil_err con_rules_set_mode(const char *text, size_t len, uint32_t line, const char *mode,
    char **ret_text, size_t *ret_len);
/* Writes path atomically: PATH.tmp-PID, fsync, rename, fsync the dir. */
vigil_err con_file_write_atomic(const char *path, const void *data, size_t len,
    char *errbuf, size_t errlen);
/* The same for a file that must not exist yet: linked at path, which never
 * replaces one. VIGIL_EEXIST: path exists, left as it is (errbuf says so). */
vigil_err con_file_write_new(const char *path, const void *data, size_t len,
    char *errbuf, size_t errlen);
/* The first max items of a list file's text (vigild's format: trimmed
 * lines, not blank, not starting with '#'), a JSON array of strings ("(not
 * UTF-8)" for an item that is not, "(contains a NUL byte)" for one vigild
 * would refuse); *ret_count (may be NULL): how many it has in all, counted
 * without making the rest (a blocked-cards list of millions). */
json_t   *con_list_items(const char *buf, size_t len, size_t max, size_t *ret_count);
/* buf[0..len) with value added as a last line (add) or every line whose
 * item is value removed; other lines byte for byte. VIGIL_OK: *ret_out
 * (malloc'd, *ret_len bytes) and *ret_changed (false: value was already
 * there, or not there). VIGIL_EINVAL: value empty or with a newline;
 * VIGIL_ENOMEM. */
vigil_err con_list_edit(const char *buf, size_t len, const char *value, bool add,
    char **ret_out, size_t *ret_len, bool *ret_changed);
/* Hex of the XXH3-128 of data (33 bytes). */
void con_hash_hex(const void *data, size_t len, char ret_hex[33]);

/*
 * What a page's read of the archive passed over (docs/console.md, "When
 * the archive is damaged"): damaged stretches the reader skipped, records
 * the entity index points at that could not be read, records that did not
 * decode. n counts them; first says where the first was, as
 * "SEGMENT:OFFSET: WHAT" (the file:offset form of vigil-archive's errors).
 * The page still answers with what it could read, and says so
 * (con_damage_json): a search must not look complete when it is not.
 */
typedef struct con_damage {
	uint64_t n;
	char     first[256];
} con_damage;
/* Counts one; the first is kept (segment: its file name; offset in it;
 * then what, printf-style). */
void con_damage_note(con_damage *d, const char *segment, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A store_corrupt_fn (archive.h) whose arg is a con_damage. */
void con_damage_on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped,
    const char *what);
/* Adds "unreadable": n and "unreadable_first": first (null when n is 0)
 * to the object o, and logs one line to stderr when n > 0 (page names
 * the API path); returns o. */
json_t *con_damage_json(json_t *o, const con_damage *d, const char *page);

/*
 * A sweep over an LMDB table in steps, each in one write transaction, a
 * step going on where the last one stopped (retention: con_index_prune,
 * con_ents_prune). The key it stopped at is kept in the caller's key[cap]
 * and *klen (0: from the start).
 *
 * con_cursor_resume opens a cursor on dbi in txn at the first key >=
 * key[0..klen), or at the first record when klen is 0, and returns 0 (the
 * record in *ret_k, *ret_v), MDB_NOTFOUND (nothing from there on) or
 * another LMDB code. *ret_c is set whenever the cursor was opened, whatever
 * the result: the caller closes it.
 */
int con_cursor_resume(MDB_txn *txn, MDB_dbi dbi, const void *key, uint32_t klen,
    MDB_cursor **ret_c, MDB_val *ret_k, MDB_val *ret_v);
/*
 * Ends a step whose last cursor call returned rc. 0: the step stopped at
 * key k, kept in key and *klen for the next step (if it fits in cap bytes;
 * if not, the next step goes on from the position kept before); returns 0.
 * MDB_NOTFOUND: the sweep is over, *klen = 0, *ret_done = true; returns 0.
 * Another code: returns it, nothing changed.
 */
int con_cursor_suspend(int rc, const MDB_val *k, void *key, size_t cap, uint32_t *klen,
    bool *ret_done);

#endif
