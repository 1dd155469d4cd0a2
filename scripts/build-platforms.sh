#!/usr/bin/env bash
# Builds the addon for every published target into its platform package directory, npm/<platform>/:
# the glibc targets with napi-rs's gcc cross toolchain (glibc 2.17 sysroot, so the .node runs on any
# glibc >= 2.17), x86_64 musl with musl-gcc and aarch64 musl with zig (both linking musl dynamically,
# as Node on Alpine needs), and the WebAssembly fallback with `npm run build:wasi`. Then the
# TypeScript and the generated loader (binding.js), as `npm run build` writes them (first).
# Usage: scripts/build-platforms.sh [target...]   (default: every target in package.json napi.targets)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(node -p 'require("./package.json").napi.targets.join("\n")')
fi

abi_of() {
  case "$1" in
    x86_64-unknown-linux-gnu) echo linux-x64-gnu ;;
    x86_64-unknown-linux-musl) echo linux-x64-musl ;;
    aarch64-unknown-linux-gnu) echo linux-arm64-gnu ;;
    aarch64-unknown-linux-musl) echo linux-arm64-musl ;;
    wasm32-wasip1-threads) echo wasm32-wasi ;;
    *) echo "build-platforms: unknown target $1" >&2; exit 1 ;;
  esac
}

ensure_rust_target() {
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

# zig from PyPI (ziglang): the C compiler and linker for the musl targets.
zig_bin() {
  python3 -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))' 2>/dev/null || {
    python3 -m pip install --quiet --break-system-packages ziglang >&2 || python3 -m pip install --quiet ziglang >&2
    python3 -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))'
  }
}

# A `cc` for one zig target, as cargo and cc-rs call a linker/compiler (one executable path, no arguments).
zig_cc_wrapper() {
  local zig=$1 zig_target=$2 rust_target=$3 wrapper=".tmp/zig/$2-cc" unwind
  unwind="$(rustc --print sysroot)/lib/rustlib/$rust_target/lib/self-contained/libunwind.a"
  mkdir -p .tmp/zig
  cat >"$wrapper" <<WRAP
#!/usr/bin/env bash
# Rust names the unwinder -lgcc_s for a dynamic musl link; there is no musl libgcc_s here, so the
# toolchain's self-contained libunwind.a is linked in instead (as scripts/musl-gcc-link does).
# Flags zig's clang takes differently are dropped.
args=()
for arg in "\$@"; do
  case "\$arg" in
    --target=*) ;;
    -lgcc_s) args+=("$unwind") ;;
    *) args+=("\$arg") ;;
  esac
done
exec "$zig" cc -target $zig_target "\${args[@]}"
WRAP
  chmod +x "$wrapper"
  echo "$PWD/$wrapper"
}

build_native() {
  local target=$1 abi out
  abi=$(abi_of "$target")
  out="npm/$abi"
  ensure_rust_target "$target"
  local flags=(--platform --release --target "$target" --output-dir "$out" --no-js --dts .tmp/discarded.d.ts)
  case "$target" in
    *-linux-gnu)
      bash scripts/napi-cross-toolchain.sh "$target"
      npx napi build "${flags[@]}" --use-napi-cross
      ;;
    x86_64-unknown-linux-musl)
      # .cargo/config.toml links it with musl-gcc (scripts/musl-gcc-link), dynamically.
      npx napi build "${flags[@]}"
      ;;
    aarch64-unknown-linux-musl)
      # Debian has no aarch64 musl cross compiler: zig (PyPI's ziglang) compiles and links for it.
      local zig cc
      zig=$(zig_bin)
      cc=$(zig_cc_wrapper "$zig" aarch64-linux-musl "$target")
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=$cc CC_aarch64_unknown_linux_musl=$cc \
        npx napi build "${flags[@]}"
      ;;
  esac
  rm -rf "$out/.tmp" .tmp/discarded.d.ts
  echo "build-platforms: $out/cloacina-sign.$abi.node"
}

# The host build first: binding.js (the loader that picks a platform package), binding.d.ts (which
# the WebAssembly build is checked against) and dist/.
npm run build

for target in "${targets[@]}"; do
  case "$target" in
    wasm32-wasip1-threads)
      if node -e 'process.exit(require("./package.json").scripts["build:wasi"] ? 0 : 1)'; then
        npm run build:wasi
      else
        echo "build-platforms: no build:wasi script; the WebAssembly fallback is not built" >&2
        exit 1
      fi
      ;;
    *) build_native "$target" ;;
  esac
done
