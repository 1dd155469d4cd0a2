#!/usr/bin/env bash
# Writes the installable tarballs into dist/packages/: the main package, with optionalDependencies on
# every platform package (added here, as napi-rs's prepublish does, so this checkout's own install
# never asks the registry for packages that are published from it), and one tarball per platform
# directory npm/<platform>/ that holds its built binary (scripts/build-platforms.sh builds them).
# Every package gets the main package's version.
# Usage: scripts/pack-platforms.sh [out-dir]   (default dist/packages)
# CLOACINA_PACK_HOST_BUILD=1 packs the quick-start build (npm run build) as this machine's platform
# package when build:platforms has not built it (for tests: that build needs a newer glibc).
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(realpath -m "${1:-dist/packages}")
rm -rf "$out"
mkdir -p "$out"
staging=$(mktemp -d "${TMPDIR:-/tmp}/cloacina-pack.XXXXXX")
trap 'rm -rf "$staging"' EXIT
version=$(node -p 'require("./package.json").version')

if [ ! -f binding.js ] || [ ! -f dist/src/index.js ]; then
  echo "pack-platforms: build first (npm run build, or npm run build:platforms)" >&2
  exit 1
fi

for dir in npm/*/; do
  dir=${dir%/}
  [ -f "$dir/package.json" ] || continue
  main=$(node -p "require('./$dir/package.json').main")
  stage=$staging/$(basename "$dir")
  if [ -f "$dir/$main" ]; then
    cp -a "$dir" "$stage"
  elif [ "${CLOACINA_PACK_HOST_BUILD:-}" = 1 ] && [ -f "$main" ]; then
    cp -a "$dir" "$stage"
    cp "$main" "$stage/$main"
  else
    echo "pack-platforms: $dir/$main is not built; skipping $(basename "$dir")" >&2
    continue
  fi
  # Symbols are for debugging here, not for consumers: stripped, the binary is about a fifth smaller.
  case "$main" in
    *arm64*) strip_tool=aarch64-linux-gnu-strip ;;
    *) strip_tool=strip ;;
  esac
  case "$main" in
    *.node) "$strip_tool" --strip-all "$stage/$main" ;;
  esac
  node -e '
    const fs = require("fs");
    const file = process.argv[1] + "/package.json";
    const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
    manifest.version = process.argv[2];
    fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n");
  ' "$stage" "$version"
  (cd "$stage" && npm pack --silent --pack-destination "$out" >/dev/null)
done

# The main package: this checkout's files, its package.json with the platform packages as optional
# dependencies (every target in napi.targets, built here or not: npm installs only the matching one).
stage=$staging/main
mkdir -p "$stage"
node -e '
  const fs = require("fs");
  const manifest = JSON.parse(fs.readFileSync("package.json", "utf8"));
  const abi = {
    "x86_64-unknown-linux-gnu": "linux-x64-gnu",
    "x86_64-unknown-linux-musl": "linux-x64-musl",
    "aarch64-unknown-linux-gnu": "linux-arm64-gnu",
    "aarch64-unknown-linux-musl": "linux-arm64-musl",
    "wasm32-wasip1-threads": "wasm32-wasi",
  };
  const optional = { ...manifest.optionalDependencies };
  for (const target of manifest.napi.targets) optional[`${manifest.napi.packageName}-${abi[target]}`] = manifest.version;
  manifest.optionalDependencies = Object.fromEntries(Object.entries(optional).sort(([a], [b]) => a.localeCompare(b)));
  // What only this checkout needs: its build, test and lint scripts, and its dev tools.
  delete manifest.devDependencies;
  delete manifest.scripts;
  delete manifest.overrides;
  fs.writeFileSync(process.argv[1] + "/package.json", JSON.stringify(manifest, null, 2) + "\n");
' "$stage"
for entry in README.md LICENSE index.d.ts binding.js binding.d.ts; do cp "$entry" "$stage/"; done
mkdir -p "$stage/dist"
cp -a dist/src "$stage/dist/src"
cp -a dist/migrations "$stage/dist/migrations"
(cd "$stage" && npm pack --silent --pack-destination "$out" >/dev/null)

ls -l "$out"
