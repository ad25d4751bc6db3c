#!/usr/bin/env bash
# Installs what qwen-web needs on a fresh Debian machine: Debian's chromium (browser tests),
# emscripten (kernel builds), Jinja2 (the chat-template oracle), then the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v emcc >/dev/null 2>&1 || missing+=(emscripten)
python3 -c 'import jinja2' >/dev/null 2>&1 || missing+=(python3-jinja2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
