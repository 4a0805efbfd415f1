#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/deploy/test_python_pb2.py - the vigil_pb2.py shipped in the Python
package (clients/python/vigil_client, checked in so that pip needs no
protoc) matches proto/vigil.proto: protoc's output for the proto now must
carry the same serialized file descriptor. Compares descriptors, not bytes,
so another protoc version's comments and layout do not matter.
Usage: test_python_pb2.py PROTOC PROTO_DIR SHIPPED_PB2.
"""
import ast
import os
import re
import subprocess
import sys
import tempfile


def descriptor_bytes(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"AddSerializedFile\((b'(?:[^'\\]|\\.)*')\)", text)
    if m is None:
        sys.exit("test_python_pb2: %s: no AddSerializedFile(b'...') in it" % path)
    return ast.literal_eval(m.group(1))


def main():
    protoc, proto_dir, shipped = sys.argv[1:4]
    with tempfile.TemporaryDirectory(prefix="vigil-pb2-") as tmp:
        subprocess.run([protoc, "--proto_path=" + proto_dir, "--python_out=" + tmp,
                        os.path.join(proto_dir, "vigil.proto")], check=True)
        fresh = descriptor_bytes(os.path.join(tmp, "vigil_pb2.py"))
    if descriptor_bytes(shipped) != fresh:
        sys.exit("test_python_pb2: %s does not match %s/vigil.proto: regenerate it with\n"
                 "  protoc --proto_path=proto --python_out=clients/python/vigil_client "
                 "proto/vigil.proto" % (shipped, proto_dir))
    print("test_python_pb2: ok: %s matches vigil.proto (%d descriptor bytes)"
          % (shipped, len(fresh)))


if __name__ == "__main__":
    main()
