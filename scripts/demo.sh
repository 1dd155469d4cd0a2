#!/usr/bin/env bash
# End-to-end demo on the embedded default (SQLite): an organization, a database signing key and its trusted
# public key, a real workflow package signed, verified, loaded from sealed memory and run (with database
# trust and with a pinned key file); a tampered copy refused.
set -euo pipefail
cd "$(dirname "$0")/.."

cli() { node dist/src/cli/main.js "$@"; }
step() { printf '\n== %s\n' "$*"; }
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }
refused() {
  local status=0
  "$@" || status=$?
  if [ "$status" -ne 1 ]; then
    echo "demo FAILED: expected a refusal (exit 1), got exit $status" >&2
    exit 1
  fi
  echo "-> refused as expected (exit 1)"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/cloacina-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CLOACINA_DATABASE_URL="sqlite:$work/cloacina.db"
export CLOACINA_AUDIT_LOG="$work/audit.jsonl"
CLOACINA_KEY_ENCRYPTION_KEY=$(node -e 'console.log(require("crypto").randomBytes(32).toString("base64"))')
export CLOACINA_KEY_ENCRYPTION_KEY

step "1. Create the database (SQLite at $work/cloacina.db) and an organization"
cli db migrate
cli orgs create acme

step "2. Generate a signing key in the database (the private key is sealed under the KEK, never in JS)"
key_id=$(cli keys generate --name release --org acme --json | field id)

step "3. Trust its public key: a signing key alone is trusted by nobody (keys export, then keys trust)"
cli keys export "$key_id" --format pem --output "$work/release.pub.pem"
cli keys trust --import "$work/release.pub.pem" --name release --org acme
cli keys list --org acme --effective

step "4. Compile a real workflow package (a shared library exporting the Cloacina ABI)"
cc -shared -fPIC -O2 -Iexamples/workflow -o "$work/libdata_pipeline.so" examples/workflow/data_pipeline.c
ls -l "$work/libdata_pipeline.so"

step "5. Sign it with the database key (writes libdata_pipeline.so.sig)"
cli package sign "$work/libdata_pipeline.so" --key-id "$key_id"
cat "$work/libdata_pipeline.so.sig"; echo

step "6. Verify it against what acme trusts"
cli package verify "$work/libdata_pipeline.so" --org acme --json

step "7. Load it from sealed memory, list its tasks and run one"
cli package inspect "$work/libdata_pipeline.so" --org acme
cli package run "$work/libdata_pipeline.so" --org acme --task collect_data --context '{"source":"demo"}' --require-signatures

step "8. Tamper with a copy (one byte changed): verification and loading must refuse it"
cp "$work/libdata_pipeline.so" "$work/libtampered.so"
cp "$work/libdata_pipeline.so.sig" "$work/libtampered.so.sig"
# Flip every bit of the byte at offset 4096 (writing a fixed value could leave the byte as it was).
node -e 'const fs=require("fs");const fd=fs.openSync(process.argv[1],"r+");const b=Buffer.alloc(1);fs.readSync(fd,b,0,1,4096);b[0]^=0xff;fs.writeSync(fd,b,0,1,4096);fs.closeSync(fd)' "$work/libtampered.so"
cmp -s "$work/libdata_pipeline.so" "$work/libtampered.so" && { echo "demo FAILED: the tampered copy equals the original" >&2; exit 1; }
refused cli package verify "$work/libtampered.so" --org acme
refused cli package run "$work/libtampered.so" --org acme --task collect_data --require-signatures

step "9. A runner with no database: the same package against the pinned public key (--trust-key)"
cli package run "$work/libdata_pipeline.so" --trust-key "$work/release.pub.pem" --task collect_data --context '{"source":"pinned"}' --require-signatures

step "10. The audit trail"
cli audit list --org acme --limit 20

printf '\ndemo complete: signed package verified, loaded and run; tampered copy refused\n'
