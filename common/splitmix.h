/* SPDX-License-Identifier: MIT */
/*
 * common/splitmix.h - splitmix64 (Steele, Lea and Flood, 2014), the one
 * deterministic 64-bit generator and mixer of the project: it seeds
 * vigil-gen's xoshiro256**, draws the nightly's training sample
 * (batch/trainset.c: one step from a key is a bijective mix of the key)
 * and makes the benchmarks' synthetic data, so a seed gives the same
 * stream wherever it is used.
 */
#ifndef VIGIL_SPLITMIX_H
#define VIGIL_SPLITMIX_H

#include <stdint.h>

/* The next value of the stream whose state is *state (advanced). */
static inline uint64_t
vigil_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A double in [0, 1) from the top 53 bits of r. */
static inline double
vigil_unit_double(uint64_t r)
{
	return (double)(r >> 11) / 9007199254740992.0;
}

#endif
