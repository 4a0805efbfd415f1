/* SPDX-License-Identifier: MIT */
/* features/slots.h - the slot numbers of the feature schema as constants
 * (STORE_SLOT_<ROW>), made from the one feature table, schema.def: for the code
 * that fills slots by number (features/, and store/'s live velocity and archive
 * decoding). */
#ifndef VIGIL_FEATURES_SLOTS_H
#define VIGIL_FEATURES_SLOTS_H

enum store_slot {
#define F(slot, name, type, source, model, doc) STORE_SLOT_##slot,
#include "schema.def"
#undef F
	STORE_SLOT_COUNT_
};

#endif
