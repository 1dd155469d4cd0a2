#!/usr/bin/env bash
# Checks the platform tarballs that pack-platforms wrote: each holds one binary for its CPU and libc
# (readelf: machine, the libc it links, stripped), the glibc ones need no symbol newer than
# GLIBC_2.17, and the package.json says the same os/cpu/libc. Prints a table of sizes.
# Usage: scripts/check-platform-packages.sh [dir]   (default dist/packages)
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-dist/packages}
glibc_floor=2.17
work=$(mktemp -d "${TMPDIR:-/tmp}/cloacina-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
checked=0
fail() { echo "FAIL $1: $2" >&2; failures=$((failures + 1)); }

printf '%-42s %-8s %-6s %-12s %10s %10s\n' package machine libc max-GLIBC tarball binary
for tarball in "$dir"/cloacina-sign-binding-linux-*.tgz; do
  [ -e "$tarball" ] || continue
  name=$(basename "$tarball" .tgz)
  abi=$(echo "$name" | sed -E 's/^cloacina-sign-binding-(linux-[a-z0-9]+-[a-z]+)-[0-9].*$/\1/')
  mkdir -p "$work/$abi"
  tar -xzf "$tarball" -C "$work/$abi"
  pkg=$work/$abi/package
  binaries=$(cd "$pkg" && ls ./*.node 2>/dev/null | wc -l)
  binary=$pkg/cloacina-sign.$abi.node
  if [ "$binaries" -ne 1 ] || [ ! -f "$binary" ]; then fail "$abi" "expected exactly cloacina-sign.$abi.node"; continue; fi

  case "$abi" in
    linux-x64-*) want_machine='Advanced Micro Devices X86-64'; want_cpu=x64 ;;
    linux-arm64-*) want_machine='AArch64'; want_cpu=arm64 ;;
  esac
  case "$abi" in
    *-gnu) want_libc=glibc ;;
    *-musl) want_libc=musl ;;
  esac
  machine=$(readelf -h "$binary" | sed -n 's/^ *Machine: *//p')
  [ "$machine" = "$want_machine" ] || fail "$abi" "machine is '$machine', expected '$want_machine'"
  needed=$(readelf -d "$binary" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
  max_glibc=$(readelf -V -W "$binary" | { grep -o 'GLIBC_[0-9.]*' || true; } | sed 's/GLIBC_//' | sort -uV | tail -1)
  if [ "$want_libc" = glibc ]; then
    [[ " $needed" == *" libc.so.6 "* ]] || fail "$abi" "does not link glibc's libc.so.6 (needs: $needed)"
    if [ -z "$max_glibc" ] || [ "$(printf '%s\n%s\n' "$max_glibc" "$glibc_floor" | sort -V | tail -1)" != "$glibc_floor" ]; then
      fail "$abi" "needs GLIBC_${max_glibc:-?}, newer than the floor GLIBC_$glibc_floor"
    fi
  else
    [[ " $needed" == *" libc.so.6 "* ]] && fail "$abi" "links glibc's libc.so.6, expected musl (needs: $needed)"
    [[ " $needed" =~ \ libc(\.musl-[a-z0-9_]+\.so\.1|\.so)\  ]] || fail "$abi" "does not link musl's libc (needs: $needed)"
    [ -z "$max_glibc" ] || fail "$abi" "has GLIBC_ symbol versions"
  fi
  readelf -S -W "$binary" | grep -q ' \.symtab ' && fail "$abi" "is not stripped (.symtab)"
  manifest=$(node -p 'const m = require(process.argv[1]); [m.os, m.cpu, m.libc].map(String).join(" ")' "$pkg/package.json")
  [ "$manifest" = "linux $want_cpu $want_libc" ] || fail "$abi" "package.json says os/cpu/libc '$manifest', expected 'linux $want_cpu $want_libc'"
  printf '%-42s %-8s %-6s %-12s %10s %10s\n' "@cloacina-sign/binding-$abi" "$want_cpu" "$want_libc" "${max_glibc:--}" \
    "$(stat -c %s "$tarball")" "$(stat -c %s "$binary")"
  checked=$((checked + 1))
done

if [ "$checked" -eq 0 ]; then
  echo "check-platform-packages: no platform tarballs in $dir" >&2
  exit 1
fi
if [ "$failures" -ne 0 ]; then
  echo "check-platform-packages: $failures failed" >&2
  exit 1
fi
echo "check-platform-packages: $checked platform packages checked"
