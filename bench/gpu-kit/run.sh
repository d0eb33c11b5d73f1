#!/usr/bin/env bash
# Runs the packed benchmark (see pack.sh) on a Linux x86-64 machine, no Node or network needed:
#   ./run.sh [bench options...]        e.g. ./run.sh --runs 2 --only forward,load
# Unpacks node, Dawn, ORT's .wasm files and the model into a temporary folder, points the Vulkan
# loader at the NVIDIA driver when it is there (VK_DRIVER_FILES), puts the kit's libvulkan.so.1 on
# LD_LIBRARY_PATH, and runs the bench with --runs 20 --profile --kernels, and --tune when the packed
# bench has it (options given here come later and win; --no-profile turns the profile off). Writes
# <gpu>.json (the adapter's name, e.g. nvidia-h100-80gb-hbm3.json) with the HTML report next to it
# (<gpu>.html: the kernel lab's charts, the roofline, Grad-CAM's stages), latest.json, latest.html,
# bench-output.txt and bench-stderr.txt into $OUT when set, else the current folder.
set -euo pipefail

kit=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=$(readlink -m "${OUT:-$PWD}")
mkdir -p "$dest"
work=$(mktemp -d "${TMPDIR:-/tmp}/gradcam-kit.XXXXXX")
trap 'rm -rf "$work"' EXIT

unxz_to() { # unxz_to FILE.xz DEST: xz when installed, else Python's lzma module
  if command -v xz >/dev/null 2>&1; then xz -dc "$1" > "$2"
  elif command -v python3 >/dev/null 2>&1; then python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  else echo "run.sh: need xz or python3 to unpack $1" >&2; exit 1
  fi
}

t0=$(date +%s)
cp -a "$kit/." "$work/"
while IFS= read -r -d '' f; do
  unxz_to "$f" "${f%.xz}"
  rm -f "$f"
done < <(find "$work" -name '*.xz' -print0)
chmod +x "$work/node"
echo "run.sh: unpacked into $work in $(( $(date +%s) - t0 )) s" >&2

# Vulkan: the kit's loader (Debian's libvulkan1) unless the machine has one; the NVIDIA driver's ICD.
export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done
# dawn.node needs GLIBCXX_3.4.30: the kit's libstdc++ (GCC 12) only when the machine's is older.
sys_cxx=""
for c in "$( (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ { print $NF; exit }' || true)" \
         /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib64/libstdc++.so.6 /lib64/libstdc++.so.6; do
  if [ -n "$c" ] && [ -f "$c" ]; then sys_cxx=$c; break; fi
done
if [ -z "$sys_cxx" ] || ! grep -qa GLIBCXX_3.4.30 "$sys_cxx"; then
  export LD_LIBRARY_PATH="$work/lib/compat:$LD_LIBRARY_PATH"
  echo "run.sh: using the kit's libstdc++ (the machine's ${sys_cxx:-is missing} lacks GLIBCXX_3.4.30)" >&2
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$icd" ]; then
  export VK_DRIVER_FILES="$icd"
fi
# No checkout around bench.mjs: the model cache (generated models, tuned plans) in the temporary
# folder, unless GRADCAM_CACHE says where (src/node/paths.ts looks for package.json otherwise).
export GRADCAM_CACHE="${GRADCAM_CACHE:-$work/cache}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$work/xdg}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

[ -f "$kit/SOURCE" ] && export GRADCAM_BENCH_GIT="$(cat "$kit/SOURCE")"

model=(--model generated:googlenet-zoo-seeded)
for f in "$work"/model/*.onnx; do [ -f "$f" ] && model=(--model "$f") && break; done

{
  echo "run.sh: $(uname -srm); VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
  head -4 "$kit/MANIFEST" 2>/dev/null || true
} >&2

# The kernel lab always; the measured variant choice (--tune) when this bench has it.
defaults=(--runs 20 --profile --kernels)
if "$work/node" "$work/bench.mjs" --help 2>/dev/null | grep -q -- '--tune'; then defaults+=(--tune); fi

set +e
"$work/node" "$work/bench.mjs" "${defaults[@]}" "${model[@]}" --out "$dest" --name '{adapter}.json' "$@" 2> >(tee "$dest/bench-stderr.txt" >&2) | tee "$dest/bench-output.txt"
rc=${PIPESTATUS[0]}
set -e
echo "run.sh: bench exited with $rc; results in $dest: $(cd "$dest" && ls -1 *.json *.html 2>/dev/null | tr '\n' ' ')" >&2
exit "$rc"
