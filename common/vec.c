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
	if (n > v->max - v->len)
		return VIGIL_ETOOBIG;
	return vigil_array_reserve(&v->data, &v->cap, v->len + n, v->elem_size, VEC_FIRST, v->max);
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

size_t
vigil_array_grown(size_t cap, size_t need, size_t first, size_t max)
{
	size_t ncap;

	if (need <= cap)
		return cap;
	if (need > max)
		return 0;
	ncap = cap > 0 ? cap : (first > 0 ? first : 1);
	while (ncap < need)
		ncap = ncap > max / 2 ? max : ncap * 2;
	return ncap < max ? ncap : max;
}

vigil_err
vigil_array_resize(void *arrp, size_t n, size_t elem_size)
{
	void *p, *np;

	if (elem_size > 0 && n > SIZE_MAX / elem_size)
		return VIGIL_ENOMEM;
	memcpy(&p, arrp, sizeof p);
	np = realloc(p, n * elem_size);
	if (np == NULL && n * elem_size > 0)
		return VIGIL_ENOMEM;
	memcpy(arrp, &np, sizeof np);
	return VIGIL_OK;
}

vigil_err
vigil_array_reserve(void *arrp, size_t *cap, size_t need, size_t elem_size, size_t first,
    size_t max)
{
	size_t    ncap;
	vigil_err rv;

	if (need <= *cap)
		return VIGIL_OK;
	ncap = vigil_array_grown(*cap, need, first, max);
	if (ncap == 0)
		return VIGIL_ETOOBIG;
	rv = vigil_array_resize(arrp, ncap, elem_size);
	if (rv == VIGIL_OK)
		*cap = ncap;
	return rv;
}

vigil_err
vigil_buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return VIGIL_OK;
	if (vigil_array_resize(buf, need, 1) != VIGIL_OK)
		return VIGIL_ENOMEM;
	*cap = need;
	return VIGIL_OK;
}
