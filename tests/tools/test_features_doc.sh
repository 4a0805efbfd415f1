#!/bin/sh
# SPDX-License-Identifier: MIT
# docs/features.md carries the feature table exactly as `vigil-rules features
# --markdown` prints it from features/schema.def. Fails (with a diff) while
# they disagree.
# usage: test_features_doc.sh VIGIL_RULES SOURCE_ROOT
set -eu
rules=$1
doc=$2/docs/features.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$rules" features --markdown > "$tmp/want"
sed -n '/^<!-- BEGIN: vigil-rules features --markdown/,/^<!-- END -->/p' "$doc" |
	sed '1d;$d' > "$tmp/have"
if ! diff -u "$tmp/have" "$tmp/want"; then
	echo "docs/features.md: the feature table differs from features/schema.def" \
		"(regenerate it with: vigil-rules features --markdown)" >&2
	exit 1
fi
echo "docs/features.md: $(wc -l < "$tmp/want") table lines agree with features/schema.def"
