# SPDX-License-Identifier: MIT
"""The consistent-hash ring, identical to libvigil-client's (clients/c/ring.c).

Each replica URL is placed at `vnodes` points XXH3_64("<url>#<i>"); a key
belongs to the first point at or after XXH3_64(key), wrapping around. Points
with equal hashes are ordered by replica index. Because the C and Python
clients build the same ring, a card is routed to the same replica whichever
client scores it. XXH3 comes from Debian's libxxhash through ctypes.
"""

import bisect
import ctypes
import ctypes.util


def _load_xxhash():
    for name in (ctypes.util.find_library("xxhash"), "libxxhash.so.0", "libxxhash.so"):
        if name is None:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        f = lib.XXH3_64bits
        f.restype = ctypes.c_uint64
        f.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        return f
    raise OSError("cannot load libxxhash (Debian package libxxhash0)")


_xxh3 = _load_xxhash()


def xxh3_64(data):
    """XXH3 64-bit hash of bytes, seed 0."""
    return _xxh3(data, len(data))


class Ring:
    """Consistent-hash ring over a list of names (replica URLs)."""

    def __init__(self, names, vnodes=160):
        if not names or len(names) > 64:
            raise ValueError("need 1 to 64 replicas")
        if not 1 <= vnodes <= 4096:
            raise ValueError("vnodes must be in [1, 4096]")
        points = []
        for i, name in enumerate(names):
            for v in range(vnodes):
                points.append((xxh3_64(("%s#%d" % (name, v)).encode()), i))
        points.sort()
        self._hashes = [h for h, _ in points]
        self._nodes = [n for _, n in points]
        self._n = len(names)

    def _index(self, key):
        if isinstance(key, str):
            key = key.encode()
        i = bisect.bisect_left(self._hashes, xxh3_64(key))
        return 0 if i == len(self._hashes) else i

    def owner(self, key):
        """Index of the replica that owns key."""
        return self._nodes[self._index(key)]

    def order(self, key):
        """Every replica index, owner first, in clockwise ring order."""
        seen = []
        i = self._index(key)
        for _ in range(len(self._nodes)):
            node = self._nodes[i]
            if node not in seen:
                seen.append(node)
                if len(seen) == self._n:
                    break
            i += 1
            if i == len(self._nodes):
                i = 0
        return seen
