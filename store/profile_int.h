/* SPDX-License-Identifier: MIT */
/* store/profile_int.h - private to store/: the batch profile fields that are
 * features as they are (schema.def's FP rows), copied into a feature vector
 * (profile.c; db.c adds the DERIVED slots). */
#ifndef VIGIL_STORE_PROFILE_INT_H
#define VIGIL_STORE_PROFILE_INT_H

#include "gen.h"

/* Sets the FP slots of one source from p; other slots are untouched. */
void profile_fill_card(const store_card_profile *p, vigil_value *f);
void profile_fill_merchant(const store_entity_profile *p, vigil_value *f);
void profile_fill_terminal(const store_entity_profile *p, vigil_value *f);

#endif
