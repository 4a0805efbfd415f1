/* SPDX-License-Identifier: MIT */
/*
 * common/vec.h - a growable array with a hard cap (curl's dynbuf is the
 * model: every buffer a client or an input can grow has a limit, and going
 * over it is an error, not an allocation that keeps going). Elements are
 * fixed-size and copied in; the array doubles as it grows, never past the
 * cap. An embedded object: vigil_vec_init / vigil_vec_fini.
 *
 *     vigil_vec v;
 *     vigil_vec_init(&v, sizeof(rp_label), RP_MAX_LABELS);
 *     rv = vigil_vec_push(&v, &label);        // VIGIL_ETOOBIG past the cap
 *     rp_label *all = v.data;                 // v.len of them
 *     vigil_vec_fini(&v);
 *
 * Every growable array of the project grows through this file: a vigil_vec
 * where the array is an object of its own, vigil_array_reserve where it is
 * a pointer and a capacity in a struct of the caller's (one policy:
 * doubling from a first size, never past a cap), vigil_array_grown and
 * vigil_array_resize for parallel arrays that share one capacity, and
 * vigil_buf_reserve for byte buffers sized exactly. (clients/c, built on
 * its own for users, keeps its one buffer.)
 *
 * Not utarray (uthash-dev, beside the uthash the project uses for hash
 * tables): utarray_reserve has no cap, doubles its count with no overflow
 * check, and on a failed allocation runs utarray_oom(), exit(-1) unless
 * redefined, inside a macro that cannot return an error, where vigild
 * answers that one request INTERNAL "out of memory" and stays up
 * (server/request.c). And it keeps its own UT_array header, where live
 * objects keep a uint32_t capacity.
 */
#ifndef VIGIL_VEC_H
#define VIGIL_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vigil.h"

typedef struct vigil_vec {
	void  *data;      /* len elements (NULL before the first growth); read and
	                   * write them freely, valid until the next growth */
	size_t len;       /* elements in use */
	size_t cap;       /* elements allocated */
	size_t elem_size;
	size_t max;       /* hard cap on len */
} vigil_vec;

/* An empty array of elements of elem_size bytes (> 0), never more than
 * max_elems (clamped so max_elems * elem_size fits a size_t). Allocates
 * nothing. */
void vigil_vec_init(vigil_vec *v, size_t elem_size, size_t max_elems);

/* Frees the elements and empties v (elem_size and max kept: v can be used
 * again). NULL is a no-op. */
void vigil_vec_fini(vigil_vec *v);

/*
 * Makes room for n more elements (len + n <= cap) without changing len:
 * the caller may then write up to n elements from vigil_vec_at(v, len) on
 * and raise len by as many (e.g. fread straight into the array).
 * VIGIL_ETOOBIG when len + n would pass the cap, VIGIL_ENOMEM; on error v
 * is unchanged.
 */
vigil_err vigil_vec_reserve(vigil_vec *v, size_t n);

/* Appends a copy of the element at elem. Errors as vigil_vec_reserve. */
vigil_err vigil_vec_push(vigil_vec *v, const void *elem);

/* Appends copies of the n elements at elems (n may be 0). Errors as
 * vigil_vec_reserve: nothing is appended unless all fit. */
vigil_err vigil_vec_append(vigil_vec *v, const void *elems, size_t n);

/* Element i (i < len); valid until the next growth. */
static inline void *
vigil_vec_at(const vigil_vec *v, size_t i)
{
	return (char *)v->data + i * v->elem_size;
}

/* Removes element i (i < len) by moving the last one into its place: O(1),
 * the order of the rest is not kept. */
static inline void
vigil_vec_remove_swap(vigil_vec *v, size_t i)
{
	v->len--;
	if (i != v->len)
		memcpy(vigil_vec_at(v, i), vigil_vec_at(v, v->len), v->elem_size);
}

/* Empties v, keeping its memory. */
static inline void
vigil_vec_clear(vigil_vec *v)
{
	v->len = 0;
}

/*
 * An array kept as a pointer and its capacity in elements (fields of the
 * caller's own struct), grown to hold at least need elements of elem_size
 * bytes, its contents kept: the capacity doubles from first (or from what
 * it was), never past max. arrp is the address of the array's pointer
 * (T **). VIGIL_OK; VIGIL_ETOOBIG when need > max; VIGIL_ENOMEM. On error
 * the array and *cap are as they were.
 *
 *     if (vigil_array_reserve(&s->ents, &s->cap, s->n + 1, sizeof *s->ents,
 *             64, MAX_ENTS) != VIGIL_OK) ...
 */
vigil_err vigil_array_reserve(void *arrp, size_t *cap, size_t need, size_t elem_size, size_t first,
    size_t max);

/*
 * The capacity vigil_array_reserve grows cap to for need (cap itself when
 * need <= cap; 0 when need > max), for parallel arrays that share one
 * capacity: compute it once, vigil_array_resize each, then store it.
 */
size_t vigil_array_grown(size_t cap, size_t need, size_t first, size_t max);

/* Reallocates the array at *arrp (T **) to n elements of elem_size bytes:
 * VIGIL_OK, or VIGIL_ENOMEM (also on overflow) with *arrp as it was. */
vigil_err vigil_array_resize(void *arrp, size_t n, size_t elem_size);

/*
 * A byte buffer kept as a pointer and its size, grown to hold at least need
 * bytes (its contents kept), for reads that put one frame or record at a
 * time in place: VIGIL_OK, or VIGIL_ENOMEM with the buffer as it was. The
 * caller bounds need (a frame's largest size).
 */
vigil_err vigil_buf_reserve(uint8_t **buf, size_t *cap, size_t need);

#endif /* VIGIL_VEC_H */
