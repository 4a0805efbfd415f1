/* SPDX-License-Identifier: MIT */
/*
 * clients/c/ring.h - the consistent-hash ring of libvigil-client (private).
 * Each replica is placed at `vnodes` points XXH3("<url>#<i>"); a key goes to
 * the first point at or after XXH3(key), wrapping around. Adding a replica
 * moves only the keys that now land on its points, about 1/(n+1) of them.
 * The ring depends on the set of names only, not on their order.
 */
#ifndef VIGIL_CLIENT_RING_H
#define VIGIL_CLIENT_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct vc_ring vc_ring;

#define VC_RING_MAX_NODES 64

/*
 * Builds a ring for names[0..n) (1 <= n <= VC_RING_MAX_NODES, 1 <= vnodes
 * <= 4096). Returns NULL on ENOMEM or bad arguments. Names are hashed, not
 * kept.
 */
vc_ring *vc_ring_new(const char *const *names, size_t n, uint32_t vnodes);
void     vc_ring_free(vc_ring *r); /* NULL is a no-op */

/* Index (into names) of the node that owns key[0..len). */
size_t vc_ring_owner(const vc_ring *r, const void *key, size_t len);

/*
 * The preference list of key: ret_order[0] is the owner, then every other
 * node in the order met walking the ring clockwise. ret_order must hold n
 * entries. Returns n.
 */
size_t vc_ring_order(const vc_ring *r, const void *key, size_t len, uint8_t *ret_order);

#endif
