#!/usr/bin/env bash
# End-to-end demo: key, real shared library, signature, verification, and a tampered copy refused.
set -euo pipefail
cd "$(dirname "$0")/.."

cli() { node dist/src/cli/main.js "$@"; }
step() { printf '\n== %s\n' "$*"; }
work=$(mktemp -d "${TMPDIR:-/tmp}/cloacina-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

step "1. Generate an Ed25519 signing key"
mkdir -p "$work/keys"
cli keys generate --name demo --output "$work/keys/demo.pem"

step "2. Compile a real workflow package (a shared library exporting the Cloacina ABI)"
cc -shared -fPIC -O2 -o "$work/libdata_pipeline.so" examples/workflow/data_pipeline.c
ls -l "$work/libdata_pipeline.so"

step "3. Sign it (writes libdata_pipeline.so.sig)"
cli package sign "$work/libdata_pipeline.so" --key "$work/keys/demo.pem"
cat "$work/libdata_pipeline.so.sig"

step "4. Verify it"
cli package verify "$work/libdata_pipeline.so" --public-key "$work/keys/demo.pub.pem" --json

step "5. Tamper with a copy (one byte changed) and verify again: it must be refused"
cp "$work/libdata_pipeline.so" "$work/libtampered.so"
cp "$work/libdata_pipeline.so.sig" "$work/libtampered.so.sig"
printf '\x00' | dd of="$work/libtampered.so" bs=1 seek=4096 conv=notrunc status=none
status=0
cli package verify "$work/libtampered.so" --public-key "$work/keys/demo.pub.pem" || status=$?
if [ "$status" -ne 1 ]; then
  echo "demo FAILED: the tampered package was not refused (exit $status)" >&2
  exit 1
fi
echo "refused as expected (exit 1)"

printf '\ndemo complete: signed package verified, tampered copy refused\n'
