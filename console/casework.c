/* SPDX-License-Identifier: MIT */
/*
 * console/casework.c - what analysts record on a case (docs/console.md,
 * "Verdicts"): its status (open, investigating, closed), its assignee and
 * its notes. Kept in an LMDB of its own, STATE/casework, not in the index:
 * the index can be removed and rebuilt from the archive, analysts' work
 * cannot (each change is in the audit log too). One value per case, the
 * compact JSON text {"status","assignee","notes":[{"ts","who","text"}]}.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "console.h"

struct con_casework {
	MDB_env *env;
	MDB_dbi  dbi;
};

vigil_err
con_casework_open(const char *dir, con_casework **ret_cw, char *errbuf, size_t errlen)
{
	con_casework *cw = calloc(1, sizeof *cw);
	MDB_txn *txn = NULL;
	int rc;

	if (cw == NULL)
		return VIGIL_ENOMEM;
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		snprintf(errbuf, errlen, "%s: %s", dir, strerror(errno));
		free(cw);
		return vigil_err_from_errno(errno);
	}
	if ((rc = mdb_env_create(&cw->env)) != 0 ||
	    (rc = mdb_env_set_mapsize(cw->env, (size_t)1 << 30)) != 0 ||
	    (rc = mdb_env_open(cw->env, dir, MDB_NOTLS, 0640)) != 0 ||
	    (rc = mdb_txn_begin(cw->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &cw->dbi)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		snprintf(errbuf, errlen, "%s: %s", dir, mdb_strerror(rc));
		if (txn != NULL && rc != 0)
			mdb_txn_abort(txn);
		if (cw->env != NULL)
			mdb_env_close(cw->env);
		free(cw);
		return rc == ENOMEM ? VIGIL_ENOMEM : VIGIL_EIO;
	}
	*ret_cw = cw;
	return VIGIL_OK;
}

void
con_casework_close(con_casework *cw)
{
	if (cw == NULL)
		return;
	mdb_env_close(cw->env);
	free(cw);
}

json_t *
con_casework_get(con_casework *cw, const char *txn_id)
{
	MDB_txn *txn;
	MDB_val k = { strlen(txn_id), (void *)txn_id }, v;
	json_t *o = NULL;

	if (mdb_txn_begin(cw->env, NULL, MDB_RDONLY, &txn) == 0) {
		if (mdb_get(txn, cw->dbi, &k, &v) == 0)
			o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
		mdb_txn_abort(txn);
	}
	if (!json_is_object(o)) {
		json_decref(o);
		o = json_pack("{s:s, s:n, s:[]}", "status", "open", "assignee", "notes");
	}
	return o;
}

vigil_err
con_casework_put(con_casework *cw, const char *txn_id, const json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);
	MDB_txn *txn;
	MDB_val k = { strlen(txn_id), (void *)txn_id }, v;
	int rc;

	if (text == NULL)
		return VIGIL_ENOMEM;
	v.mv_size = strlen(text);
	v.mv_data = text;
	rc = mdb_txn_begin(cw->env, NULL, 0, &txn);
	if (rc == 0) {
		rc = mdb_put(txn, cw->dbi, &k, &v, 0);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	free(text);
	return rc == 0 ? VIGIL_OK : rc == MDB_MAP_FULL ? VIGIL_ELIMIT : VIGIL_EIO;
}
