#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` from the llama.cpp that the installed llama-cpp-python
# vendors: same commit, same CPU flags as scripts/install. A benchmark setup step for
# benchmarks/llama_server_compare.py, not part of the install.
#
#   benchmarks/setup_llama_server.sh            -> prints the path of the built binary
#
# The binary is kept in the home's cache (llama-server/<key>), keyed like the wheel, so later
# runs take no time. Takes about 6 minutes on 2 cores the first time.
set -euo pipefail
PY="${PYTHON:-python3}"
version="$("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)')"
NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
cache="${BACKPLAN_CACHE:-${BACKPLAN_HOME:+$BACKPLAN_HOME/cache}}"
key="$(printf '%s|%s' "$version" "$NOAMX" | sha256sum | cut -c1-16)"
dest="${cache:-$HOME/.cache/backplan}/llama-server/$key"
if [ -x "$dest/llama-server" ]; then
    echo "$dest/llama-server"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetching llama-cpp-python $version's source (its vendored llama.cpp)" >&2
# only this package from source (its build tools as wheels); preparing its metadata compiles
# nothing
"$PY" -m pip download --quiet --no-deps --no-binary llama-cpp-python -d "$work" \
    "llama-cpp-python==$version" >&2
tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
echo "building llama-server from $src (flags: $NOAMX)" >&2
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DCMAKE_C_FLAGS="$NOAMX" -DCMAKE_CXX_FLAGS="$NOAMX" >&2
cmake --build "$work/build" --target llama-server -j "$(nproc)" >&2
mkdir -p "$dest.partial"
cp "$work/build/bin/llama-server" "$dest.partial/"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "$dest/llama-server"
