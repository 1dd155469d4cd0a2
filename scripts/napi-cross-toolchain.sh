#!/usr/bin/env bash
# Puts napi-rs's prebuilt gcc cross toolchain (glibc 2.17 sysroot) for one target where
# `napi build --use-napi-cross` looks for it: ~/.napi-rs/cross-toolchain/<cli's version>/<triple>.
# The CLI would `npm pack` its toolchain package at its own version, which the registry does not have
# for every target; the newest published one is fetched here instead (npm registry only).
# Usage: scripts/napi-cross-toolchain.sh <triple>
set -euo pipefail
cd "$(dirname "$0")/.."

triple=$1
case "$triple" in
  x86_64-unknown-linux-gnu) package=@napi-rs/cross-toolchain-x64-target-x86_64 ;;
  aarch64-unknown-linux-gnu) package=@napi-rs/cross-toolchain-x64-target-aarch64 ;;
  *) echo "napi-cross-toolchain: no prebuilt toolchain for $triple" >&2; exit 1 ;;
esac
if [ "$(uname -m)" != x86_64 ]; then
  echo "napi-cross-toolchain: the toolchains used here run on x86_64 hosts only" >&2
  exit 1
fi

cli_version=$(node -p 'require("@napi-rs/cross-toolchain/package.json").version')
dest="$HOME/.napi-rs/cross-toolchain/$cli_version/$triple"
if [ -f "$dest/package.json" ]; then
  exit 0
fi

version=$(npm view "$package" version 2>/dev/null)
work=$(mktemp -d "${TMPDIR:-/tmp}/napi-cross.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "napi-cross-toolchain: fetching $package@$version for $triple"
(cd "$work" && npm pack --silent "$package@$version" >/dev/null 2>&1)
tar -xzf "$work"/*.tgz -C "$work"
rm -rf "$dest"
mkdir -p "$dest"
tar -xJf "$work/package/$triple.tar.xz" -C "$dest"
# The marker the CLI checks before it would try to download the toolchain itself.
cp "$work/package/package.json" "$dest/package.json"
