#!/bin/sh
# Build the self-contained bundle, copy it alone (no node_modules, no
# package.json) into a temporary directory, and run the CLI tests, the
# kdump collector's tests and the CLI interop tests (makedumpfile,
# libkdumpfile, drgn) against that copy.
set -eu
cd "$(dirname "$0")/.."
npm run --silent bundle
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dumpsieve-bundle-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
cp -R bundle/. "$tmp/"
for d in "$tmp" "$(dirname "$tmp")" /; do
  if [ -e "$d/node_modules" ] || [ -e "$d/package.json" ]; then
    echo "test-bundle: $d holds node_modules or package.json; set TMPDIR elsewhere" >&2
    exit 1
  fi
done
DUMPSIEVE_BIN="$tmp/dumpsieve" npx vitest run test/cli test/contrib test/interop/cli-readers.test.ts
