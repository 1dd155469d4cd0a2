#!/usr/bin/env bash
# Builds the WebAssembly fallback (wasm32-wasip1-threads) of the addon: the module, napi-rs's Node
# loader for it and the worker its threads run in. They are written next to binding.js, where the
# generated loader finds them in this checkout (NAPI_RS_FORCE_WASI=true, or no native addon), and
# copied into npm/wasm32-wasi/, the platform package that carries them to users.
# No C compiler is needed: every dependency is Rust, and napi-rs links emnapi's prebuilt archive
# from the `emnapi` npm package (which must be the same version as @emnapi/core and
# @emnapi/runtime; the napi CLI checks).
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-wasip1-threads
binary=cloacina-sign
package_dir=npm/wasm32-wasi
artifacts=("$binary.wasm32-wasi.wasm" "$binary.wasi.cjs" wasi-worker.mjs)

# The platform package must depend on exactly the runtime this module is built and tested against.
node -e '
  const wanted = require("./'"$package_dir"'/package.json").dependencies;
  // Read from node_modules: @napi-rs/wasm-runtime does not export its package.json.
  const installed = (name) => JSON.parse(require("fs").readFileSync(`node_modules/${name}/package.json`, "utf8")).version;
  const wrong = ["@napi-rs/wasm-runtime", "@emnapi/core", "@emnapi/runtime"].filter((name) => wanted[name] !== installed(name));
  for (const name of wrong) console.error(`build-wasi: ${name} is ${installed(name)} here but '"$package_dir"'/package.json asks for ${wanted[name]}`);
  if (installed("emnapi") !== installed("@emnapi/core")) console.error("build-wasi: emnapi and @emnapi/core differ");
  process.exit(wrong.length || installed("emnapi") !== installed("@emnapi/core") ? 1 : 0);
'

rustup target list --installed | grep -qx "$target" || rustup target add "$target"

mkdir -p .tmp
# The typings go aside: binding.d.ts is the native build's; the WebAssembly build must match it.
npx napi build --platform --release --target "$target" --no-js --dts .tmp/wasi-binding.d.ts

if [ -f binding.d.ts ] && ! cmp -s binding.d.ts .tmp/wasi-binding.d.ts; then
  echo "build-wasi: the WebAssembly build exports a different API from the native one:" >&2
  diff binding.d.ts .tmp/wasi-binding.d.ts >&2 || true
  exit 1
fi

# Only Node runs the fallback: the browser loaders and the unstripped module are not shipped (the
# Node loader would prefer the unstripped module when it is present).
rm -f "$binary.wasm32-wasi.debug.wasm" "$binary.wasi.d.cts" "$binary.wasi-browser.js" wasi-worker-browser.mjs browser.js

# Node prints "WASI is an experimental feature" when node:wasi loads: in the loader and in every
# worker thread. It is expected here, so the loader and the worker drop that warning (and only that
# one) before they load node:wasi; the worker, an ES module whose imports would run before anything
# else, takes node:wasi with process.getBuiltinModule instead of an import.
quiet_wasi_warning() {
  node - "$1" <<'JS'
const fs = require('node:fs');
const file = process.argv[process.argv.length - 1];
const marker = '// cloacina-sign: no experimental-WASI warning';
const text = fs.readFileSync(file, 'utf8');
if (text.includes(marker)) process.exit(0);
let filter = [
  marker,
  'const __cloacinaEmitWarning = process.emitWarning',
  'process.emitWarning = function (warning, ...rest) {',
  "  if (String((warning && warning.message) || warning).startsWith('WASI is an experimental feature')) return",
  '  return __cloacinaEmitWarning.call(this, warning, ...rest)',
  '}',
  '',
].join('\n');
// After napi-rs's header comments (its first line is metadata its tools read back).
let body = text;
if (file.endsWith('.mjs')) {
  const wasiImport = "import { WASI } from 'node:wasi'\n";
  if (!body.includes(wasiImport)) throw new Error(`${file}: no \`${wasiImport.trim()}\` to replace`);
  body = body.replace(wasiImport, '');
  filter += "const { WASI } = process.getBuiltinModule('node:wasi')\n";
}
const lines = body.split('\n');
let at = 0;
while (at < lines.length && /^\s*(\/\/|\/\*)/.test(lines[at])) at++;
fs.writeFileSync(file, [...lines.slice(0, at), filter + lines.slice(at).join('\n')].join('\n'));
JS
}
quiet_wasi_warning "$binary.wasi.cjs"
quiet_wasi_warning wasi-worker.mjs

mkdir -p "$package_dir"
cp "${artifacts[@]}" "$package_dir/"
for artifact in "${artifacts[@]}"; do
  echo "build-wasi: $package_dir/$artifact ($(stat -c %s "$artifact") bytes)"
done
