#!/usr/bin/env bash
# Builds the addon for every published target into its platform package directory, npm/<platform>/:
# the glibc targets with napi-rs's gcc cross toolchain (glibc 2.17 sysroot, so the .node runs on any
# glibc >= 2.17), the musl targets with zig as the C compiler and linker (musl linked dynamically,
# as Node on Alpine needs), and the WebAssembly fallback with `npm run build:wasi`. Then the
# TypeScript and the generated loader (binding.js), as `npm run build` writes them.
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
  local zig=$1 zig_target=$2 wrapper=".tmp/zig/$2-cc"
  mkdir -p .tmp/zig
  cat >"$wrapper" <<WRAP
#!/usr/bin/env bash
# Rust passes flags zig's clang does not know for its own musl; drop them.
args=()
for arg in "\$@"; do
  case "\$arg" in
    --target=*|-lgcc_s) ;;
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
    *-linux-musl)
      local zig cc arch env_target
      zig=$(zig_bin)
      arch=${target%%-*}
      cc=$(zig_cc_wrapper "$zig" "$arch-linux-musl")
      env_target=$(echo "$target" | tr 'a-z-' 'A-Z_')
      # A dynamically linked musl .node (crt-static would make a static binary Node cannot dlopen).
      env "CARGO_TARGET_${env_target}_LINKER=$cc" "CC_${target//-/_}=$cc" "AR_${target//-/_}=$zig ar" \
        "CARGO_TARGET_${env_target}_RUSTFLAGS=-C target-feature=-crt-static" \
        npx napi build "${flags[@]}"
      ;;
  esac
  rm -rf "$out/.tmp" .tmp/discarded.d.ts
  echo "build-platforms: $out/cloacina-sign.$abi.node"
}

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

# The host build: binding.js (the loader that picks a platform package), binding.d.ts and dist/.
npm run build
