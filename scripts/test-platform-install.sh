#!/usr/bin/env bash
# Platform metadata as npm reads it: the packed main package installed (only it named; the platform
# packages served on loopback as the registry will serve them) for each platform npm's --os/--cpu/
# --libc can claim. Each gets exactly its own native package; a platform with none (macOS, Windows)
# gets the WebAssembly fallback, which then signs and verifies there and refuses a guarded load with
# GUARDED_LOAD_UNSUPPORTED (exit 2).
# Needs: dist/packages from `npm run pack:platforms` after `npm run build:platforms`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
packages=$root/dist/packages
version=$(node -p 'require("./package.json").version')
work=$(mktemp -d "${TMPDIR:-/tmp}/cloacina-install.XXXXXX")
node "$root/dist/test/fixtures/scoped-registry.js" "$packages" >"$work/registry-url" &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do [ -s "$work/registry-url" ] && break; sleep 0.1; done
registry=$(cat "$work/registry-url")

passed=0
failed=0
check() {
  local name=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    echo "ok - $name"
    passed=$((passed + 1))
  else
    echo "not ok - $name"
    sed 's/^/  /' "$work/out"
    failed=$((failed + 1))
  fi
}

# install <dir> <os> <cpu> [libc]: the main package as a consumer on that platform installs it.
install_as() {
  local dir=$1 os=$2 cpu=$3 libc=${4:-}
  mkdir -p "$dir"
  echo '{ "name": "consumer", "version": "1.0.0", "private": true }' >"$dir/package.json"
  (cd "$dir" && npm install --os="$os" --cpu="$cpu" ${libc:+--libc="$libc"} --ignore-scripts --no-audit --no-fund --prefer-offline \
    --loglevel=error "--@cloacina-sign:registry=$registry" "$packages/cloacina-sign-$version.tgz")
}
installed() { ls "$1/node_modules/@cloacina-sign" | tr '\n' ' ' | sed 's/ $//'; }
expect_installed() {
  local dir=$1 want=$2 got
  got=$(installed "$dir")
  [ "$got" = "$want" ] || { echo "installed: '$got', expected '$want'"; return 1; }
}

for platform in "linux x64 glibc linux-x64-gnu" "linux x64 musl linux-x64-musl" "linux arm64 glibc linux-arm64-gnu" "linux arm64 musl linux-arm64-musl"; do
  read -r os cpu libc abi <<<"$platform"
  dir=$work/$abi
  check "$os-$cpu ($libc): the install succeeds" install_as "$dir" "$os" "$cpu" "$libc"
  check "$os-$cpu ($libc): npm picked binding-$abi (and the fallback)" expect_installed "$dir" "binding-$abi binding-wasm32-wasi"
done

for platform in "darwin arm64" "win32 x64"; do
  read -r os cpu <<<"$platform"
  dir=$work/$os-$cpu
  check "$os-$cpu: the install succeeds" install_as "$dir" "$os" "$cpu"
  check "$os-$cpu: only the WebAssembly fallback is installed" expect_installed "$dir" "binding-wasm32-wasi"
done

# The macOS consumer, run as macOS (process.platform/arch replaced before anything loads).
mac=$work/darwin-arm64
as_mac() { (cd "$mac" && PRETEND_PLATFORM=darwin PRETEND_ARCH=arm64 NODE_OPTIONS="-r $root/test/fixtures/consumer/pretend-platform.cjs" CLOACINA_AUDIT_LOG=off "$@"); }
cc -shared -fPIC -O1 "-I$root/examples/workflow" '-DIDENTITY="fallback"' -DPADDING=1 -o "$work/libworkflow.so" "$root/test/fixtures/fixture_package.c"
check "darwin-arm64: the library loads the WebAssembly build" \
  as_mac node -e 'const { generateKeypair } = require("cloacina-sign"); if (generateKeypair().publicKey.length !== 32) process.exit(1)'
check "darwin-arm64: keys generate" as_mac npx --no-install cloacina-sign keys generate --name mac --output "$work/mac.pem"
check "darwin-arm64: package sign" as_mac npx --no-install cloacina-sign package sign "$work/libworkflow.so" --key "$work/mac.pem"
check "darwin-arm64: package verify" as_mac npx --no-install cloacina-sign package verify "$work/libworkflow.so" --trust-key "$work/mac.pub.pem"
guarded_load_refused() {
  local status=0
  as_mac npx --no-install cloacina-sign package run "$work/libworkflow.so" --trust-key "$work/mac.pub.pem" --task whoami >"$work/run" 2>&1 || status=$?
  cat "$work/run"
  [ "$status" -eq 2 ] && grep -q GUARDED_LOAD_UNSUPPORTED "$work/run"
}
check "darwin-arm64: package run exits 2 with GUARDED_LOAD_UNSUPPORTED" guarded_load_refused

echo "platform-install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
