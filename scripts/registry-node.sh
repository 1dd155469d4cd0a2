#!/usr/bin/env bash
# Prints the path of a Node binary of the given major from the npm registry's node-linux-<arch>
# package, unpacked once under .tmp/node/ (the registry is the one place binaries come from here).
# Usage: scripts/registry-node.sh <major> [x64|arm64]
set -euo pipefail
cd "$(dirname "$0")/.."
major=$1
arch=${2:-x64}
dir=$PWD/.tmp/node/linux-$arch-$major
if [ ! -x "$dir/bin/node" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "node-linux-$arch@$major" >/dev/null 2>&1 && tar -xzf node-linux-*.tgz --strip-components=1 && rm node-linux-*.tgz)
fi
echo "$dir/bin/node"
