/* SPDX-License-Identifier: MIT */
/* store/private/profile_int.h - private to store/: a batch profile into a feature
 * vector (profile.c): the FP rows of schema.def (stored fields read as
 * they are) and the DERIVED card slots. */
#ifndef VIGIL_STORE_PROFILE_INT_H
#define VIGIL_STORE_PROFILE_INT_H

#include "gen.h"

/* Sets the FP slots of one source from p; other slots are untouched. */
void profile_fill_card(const store_card_profile *p, vigil_value *f);
void profile_fill_merchant(const store_entity_profile *p, vigil_value *f);
void profile_fill_terminal(const store_entity_profile *p, vigil_value *f);
/* profile_fill_card and the DERIVED card slots (z-score, age, hour share,
 * country and merchant seen, amount to the 30-day mean), which need the
 * request txn. */
void profile_fill_card_txn(const vigil_txn *txn, const store_card_profile *p, vigil_value *f);

#endif
