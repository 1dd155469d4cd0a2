#!/usr/bin/env bash
# CI's platform step, after the README's test command: installs the cross toolchains when missing,
# builds every published target (npm run build:platforms), packs them, checks each binary (CPU,
# libc, glibc floor, stripped), installs the packages as consumers on Node 20, 22 and 24 with no
# Rust toolchain on PATH, checks that npm picks the right package for every platform (and the
# WebAssembly fallback where none matches), and runs the arm64 package under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\nci-platforms: %s (%ss)\n' "$*" "$SECONDS"; }

step "toolchains"
apt_packages=()
command -v aarch64-linux-gnu-gcc >/dev/null || apt_packages+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v aarch64-linux-gnu-strip >/dev/null || apt_packages+=(binutils-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || apt_packages+=(qemu-user)
command -v musl-gcc >/dev/null || apt_packages+=(musl-tools musl-dev)
[ -e /lib/ld-musl-x86_64.so.1 ] || apt_packages+=(musl)
command -v readelf >/dev/null || apt_packages+=(binutils)
# arm64's own C and C++ runtimes (Debian multiarch), so that qemu-user runs arm64 programs against the
# same /lib paths an arm64 machine has (no -L prefix, which qemu applies to some syscalls and not others).
dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt_update_needed=1; }
[ -e /lib/ld-linux-aarch64.so.1 ] && [ -e /usr/lib/aarch64-linux-gnu/libstdc++.so.6 ] ||
  apt_packages+=(libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64)
if [ "${#apt_packages[@]}" -gt 0 ] || [ -n "${apt_update_needed:-}" ]; then
  apt-get update -q
  [ "${#apt_packages[@]}" -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_packages[@]}"
fi
for target in $(node -p 'require("./package.json").napi.targets.join(" ")'); do
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done

step "build every target"
npm run build:platforms
step "pack"
npm run pack:platforms
step "check the platform packages"
bash scripts/check-platform-packages.sh
step "musl: the Rust suites built for x86_64 musl, and both musl addons link musl"
bash scripts/test-musl.sh npm/linux-x64-musl/cloacina-sign.linux-x64-musl.node npm/linux-arm64-musl/cloacina-sign.linux-arm64-musl.node

step "npm picks the package for each platform; the WebAssembly fallback elsewhere"
bash scripts/test-platform-install.sh

# npm test ran the consumer on this machine's Node; here on the registry's Node 20, 22 and 24.
for major in 20 22 24; do
  step "the packed packages as a dependency on Node $major"
  CLOACINA_CONSUMER_NODE=$(bash scripts/registry-node.sh "$major") \
    npx mocha --no-config --timeout 300000 --exit dist/test/package-consumer.test.js
done

step "arm64 under qemu-user"
bash scripts/test-arm64.sh 22
step "done"
