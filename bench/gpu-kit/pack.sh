#!/usr/bin/env bash
# Packs the benchmark for a Linux x86-64 machine with an NVIDIA GPU and no Node, no network:
#   bench/gpu-kit/pack.sh [--model FILE | --generate] [--out DIR]
# into DIR (default bench/gpu-kit/kit/) and DIR.tar next to it:
#   run.sh                    unpacks into a temporary folder and runs the bench (see run.sh)
#   node.xz                   this machine's node binary, xz -9
#   bench.mjs                 bench/main.ts bundled with everything but the webgpu package (bundle.mjs)
#   node_modules/webgpu/      index.js, package.json, dist/linux-x64/dawn.node.xz (Dawn)
#   node_modules/onnxruntime-web/   package.json and the dist/ files loaded at run time (.wasm as .xz)
#   lib/                      libvulkan.so.1 from Debian's libvulkan1 (apt-get download; dpkg -x);
#                             lib/compat/libstdc++.so.6.xz for machines whose libstdc++ predates GCC 12
#   model/NAME.onnx.xz        the model: --model FILE, else googlenet-12 when cached, else the
#                             generated googlenet-zoo-seeded; --generate ships no model and has the
#                             kit build googlenet-zoo-seeded in memory (same bytes, ~25 MB smaller)
#   MANIFEST                  what is inside, sizes, the model's SHA-256
# The files are compressed one by one (xz -9), so the folder itself is what travels; the .tar is the
# same files in one piece.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
kit="$here/kit"
model=""
generate=0
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$(readlink -f "$2"); shift 2 ;;
    --generate) generate=1; shift ;;
    --out) kit=$(readlink -m "$2"); shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "pack.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$root"
[ "$(uname -m)" = x86_64 ] || echo "pack.sh: warning: this machine is $(uname -m); the kit is for x86-64" >&2

xz9() { xz -9 -T1 -c "$1" > "$2"; }   # one thread: best ratio, same output everywhere

rm -rf "$kit"
mkdir -p "$kit/node_modules/webgpu/dist/linux-x64" "$kit/node_modules/onnxruntime-web/dist" "$kit/lib"

echo "pack: bundling bench/main.ts"
node "$here/bundle.mjs" "$kit/bench.mjs"

echo "pack: node $(node --version) (xz -9, about a minute)"
xz9 "$(readlink -f "$(command -v node)")" "$kit/node.xz"

echo "pack: Dawn (webgpu $(node -p "require('./node_modules/webgpu/package.json').version"))"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$kit/node_modules/webgpu/"
xz9 node_modules/webgpu/dist/linux-x64/dawn.node "$kit/node_modules/webgpu/dist/linux-x64/dawn.node.xz"

echo "pack: onnxruntime-web $(node -p "require('./node_modules/onnxruntime-web/package.json').version") run-time files"
ort=node_modules/onnxruntime-web
# package.json: its "exports" map is how bench.mjs finds the dist/ folder (require.resolve).
cp "$ort/package.json" "$kit/$ort/"
# The wasm provider (ORT's Node build, bundled) imports this .mjs and starts its worker threads from it.
cp "$ort/dist/ort-wasm-simd-threaded.mjs" "$kit/$ort/dist/"
xz9 "$ort/dist/ort-wasm-simd-threaded.wasm" "$kit/$ort/dist/ort-wasm-simd-threaded.wasm.xz"
# The WebGPU provider (onnxruntime-web/webgpu, bundled; its glue code is embedded) needs only its .wasm.
xz9 "$ort/dist/ort-wasm-simd-threaded.asyncify.wasm" "$kit/$ort/dist/ort-wasm-simd-threaded.asyncify.wasm.xz"

echo "pack: libvulkan1 (Debian package)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
deb=""
if (cd "$tmp" && apt-get download libvulkan1 >/dev/null 2>&1); then
  deb=$(ls "$tmp"/libvulkan1_*.deb)
else
  deb=$(ls /var/cache/apt/archives/libvulkan1_*amd64.deb 2>/dev/null | head -1 || true)
fi
if [ -n "$deb" ]; then
  dpkg -x "$deb" "$tmp/x"
  # The real file under the soname (no symbolic link: some copy mechanisms drop links).
  cp -L "$tmp/x/usr/lib/x86_64-linux-gnu/libvulkan.so.1" "$kit/lib/libvulkan.so.1"
  vulkan=$(basename "$deb")
else
  vulkan="none (apt-get download libvulkan1 failed; run.sh then needs the machine's own libvulkan.so.1)"
  echo "pack: warning: $vulkan" >&2
fi

# dawn.node needs GLIBCXX_3.4.30 (GCC 12's libstdc++) and glibc 2.34; run.sh uses this copy only
# when the machine's own libstdc++ is older.
mkdir -p "$kit/lib/compat"
xz9 "$(readlink -f /lib/x86_64-linux-gnu/libstdc++.so.6)" "$kit/lib/compat/libstdc++.so.6.xz"

if [ "$generate" = 1 ]; then
  model_note="none: run.sh generates googlenet-zoo-seeded into the model cache (--model generated:googlenet-zoo-seeded)"
else
  if [ -z "$model" ]; then
    if [ -f weights/cache/googlenet-12.onnx ]; then model="$root/weights/cache/googlenet-12.onnx"
    else
      model="$root/weights/generated/googlenet-zoo-seeded.onnx"
      [ -f "$model" ] || npm run --silent gradcam -- generate googlenet-zoo-seeded
    fi
  fi
  echo "pack: model $(basename "$model") (xz -9)"
  mkdir -p "$kit/model"
  xz9 "$model" "$kit/model/$(basename "$model").xz"
  model_note="$(basename "$model"), $(stat -c %s "$model") bytes, sha256 $(sha256sum "$model" | cut -d' ' -f1)"
fi

echo "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" status --porcelain -- src shaders 2>/dev/null | grep -q . && echo +dirty)" > "$kit/SOURCE"
cp "$here/run.sh" "$kit/run.sh"
chmod +x "$kit/run.sh"

{
  echo "gradcam-webgpu GPU kit, packed $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "node: $(node --version); webgpu: $(node -p "require('./node_modules/webgpu/package.json').version"); onnxruntime-web: $(node -p "require('./node_modules/onnxruntime-web/package.json').version")"
  echo "libvulkan: $vulkan"
  echo "model: $model_note"
  echo
  (cd "$kit" && find . -type f -printf '%10s  %p\n' | sort -k2)
} > "$kit/MANIFEST"

tar -cf "$kit.tar" -C "$(dirname "$kit")" "$(basename "$kit")"
size=$(du -sb "$kit" | cut -f1)
tsize=$(stat -c %s "$kit.tar")
printf 'pack: %s: %.1f MiB (%d bytes); %s: %.1f MiB\n' "$kit" "$(echo "$size / 1048576" | bc -l)" "$size" "$kit.tar" "$(echo "$tsize / 1048576" | bc -l)"
if [ "$tsize" -gt $((60 * 1048576)) ]; then
  echo "pack: warning: over 60 MiB; the device machine takes 64 MiB in all (use --generate to leave the model out)" >&2
fi
