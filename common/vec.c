/* SPDX-License-Identifier: MIT */
/*
 * common/vec.c - the capped growable array and the byte buffer (vec.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"

/* The first allocation: 16 elements, or fewer when the cap is lower. */
#define VEC_FIRST 16

void
vigil_vec_init(vigil_vec *v, size_t elem_size, size_t max_elems)
{
	memset(v, 0, sizeof *v);
	v->elem_size = elem_size > 0 ? elem_size : 1;
	v->max = max_elems <= SIZE_MAX / v->elem_size ? max_elems : SIZE_MAX / v->elem_size;
}

void
vigil_vec_fini(vigil_vec *v)
{
	if (v == NULL)
		return;
	free(v->data);
	v->data = NULL;
	v->len = v->cap = 0;
}

vigil_err
vigil_vec_reserve(vigil_vec *v, size_t n)
{
	size_t ncap;
	void  *nd;

	if (n > v->max - v->len)
		return VIGIL_ETOOBIG;
	if (v->len + n <= v->cap)
		return VIGIL_OK;
	ncap = v->cap > 0 ? v->cap : VEC_FIRST;
	while (ncap < v->len + n)
		ncap = ncap > v->max / 2 ? v->max : ncap * 2;
	if (ncap > v->max)
		ncap = v->max;
	nd = realloc(v->data, ncap * v->elem_size);
	if (nd == NULL)
		return VIGIL_ENOMEM;
	v->data = nd;
	v->cap = ncap;
	return VIGIL_OK;
}

vigil_err
vigil_vec_push(vigil_vec *v, const void *elem)
{
	return vigil_vec_append(v, elem, 1);
}

vigil_err
vigil_vec_append(vigil_vec *v, const void *elems, size_t n)
{
	vigil_err rv;

	if (n == 0)
		return VIGIL_OK;
	rv = vigil_vec_reserve(v, n);
	if (rv != VIGIL_OK)
		return rv;
	memcpy((char *)v->data + v->len * v->elem_size, elems, n * v->elem_size);
	v->len += n;
	return VIGIL_OK;
}

vigil_err
vigil_buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *nb;

	if (need <= *cap)
		return VIGIL_OK;
	nb = realloc(*buf, need);
	if (nb == NULL)
		return VIGIL_ENOMEM;
	*buf = nb;
	*cap = need;
	return VIGIL_OK;
}
