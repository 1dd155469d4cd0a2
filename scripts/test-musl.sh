#!/usr/bin/env bash
# musl: runs the Rust suites of crates/core and crates/loader built for x86_64-unknown-linux-musl
# (linked dynamically, so the guarded loader's tests dlopen real packages compiled with musl-gcc
# through musl's own dynamic loader), and, given built musl addons, checks that each links musl and
# not glibc.
#
# Usage: scripts/test-musl.sh [--no-suites] [addon.node ...]
#
# Installs nothing. Needs: the Rust target x86_64-unknown-linux-musl; Debian's musl (the dynamic
# loader /lib/ld-musl-x86_64.so.1), musl-dev and musl-tools (musl-gcc); binutils (readelf).
set -euo pipefail
addons=()
for arg in "$@"; do
  case "$arg" in
    --no-suites) addons+=("$arg") ;;
    *) addons+=("$(realpath -m -- "$arg")") ;;
  esac
done
set -- ${addons[@]+"${addons[@]}"}
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
run_suites=1
if [ "${1:-}" = "--no-suites" ]; then
  run_suites=0
  shift
fi

fail() {
  echo "test-musl: $*" >&2
  exit 1
}

# An addon links musl when it names musl's C library or loader, and glibc when it names glibc's
# libraries or loader or requires a GLIBC_ symbol version.
check_addon() {
  local f=$1 machine needed interp
  [ -f "$f" ] || fail "$f does not exist"
  readelf -h "$f" >/dev/null 2>&1 || fail "$f is not an ELF file"
  machine=$(readelf -h "$f" | sed -n 's/^ *Machine: *//p')
  needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  interp=$(readelf -l "$f" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
  if ! grep -Eq '^(libc\.musl-.*|libc\.so|ld-musl-.*)$' <<<"$needed"$'\n'"${interp##*/}"; then
    fail "$f ($machine) does not link musl: NEEDED [$(echo $needed)], interpreter [${interp:-none}]"
  fi
  if grep -Eq '^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|ld-linux.*)$' <<<"$needed"$'\n'"${interp##*/}"; then
    fail "$f ($machine) links glibc: NEEDED [$(echo $needed)], interpreter [${interp:-none}]"
  fi
  if readelf -V --wide "$f" | grep -q 'GLIBC_'; then
    fail "$f ($machine) requires glibc symbol versions: $(readelf -V --wide "$f" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tr '\n' ' ')"
  fi
  echo "test-musl: $f ($machine) links musl (NEEDED: $(echo $needed)), no glibc"
}

start=$SECONDS
if [ "$run_suites" = 1 ]; then
  missing=()
  command -v musl-gcc >/dev/null || missing+=("musl-gcc (apt: musl-tools, musl-dev)")
  [ -e /lib/ld-musl-x86_64.so.1 ] || missing+=("/lib/ld-musl-x86_64.so.1 (apt: musl)")
  rustup target list --installed 2>/dev/null | grep -qx "$target" \
    || missing+=("the Rust target (rustup target add $target)")
  if [ ${#missing[@]} -gt 0 ]; then
    fail "missing: ${missing[*]}"
  fi
  # Linker and flags: .cargo/config.toml.
  cargo test --release --target "$target" -p cloacina-sign-core -p cloacina-sign-loader
fi
command -v readelf >/dev/null || fail "readelf is missing (apt: binutils)"
for addon in "$@"; do
  check_addon "$addon"
done
echo "test-musl: done in $((SECONDS - start)) s"
