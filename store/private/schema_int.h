/* SPDX-License-Identifier: MIT */
/* store/private/schema_int.h - slot numbers of the feature schema (private to store/:
 * schema.c, db.c, live.c, record.c, lean.c; and store's tests), made from the one
 * feature table, features/schema.def. */
#ifndef VIGIL_STORE_SCHEMA_INT_H
#define VIGIL_STORE_SCHEMA_INT_H

enum store_slot {
#define F(slot, name, type, source, model, doc) STORE_SLOT_##slot,
#include "schema.def"
#undef F
	STORE_SLOT_COUNT_
};

#endif
