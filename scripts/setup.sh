#!/usr/bin/env bash
# Installs what qwen-web needs on a fresh Debian machine, and only that:
#   bash scripts/setup.sh            the npm packages: enough to run the app (npm run dev)
#   bash scripts/setup.sh --test     also Debian's chromium, firefox-esr and WebKitGTK's WebDriver
#                                    with Xvfb (browser tests) and
#                                    Jinja2 (the chat-template oracle): enough for npm test
#   bash scripts/setup.sh --build    also emscripten, to rebuild the kernels' .wasm (npm run build:wasm)
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for option in "$@"; do
  case "$option" in
    --test)
      command -v chromium >/dev/null 2>&1 || missing+=(chromium)
      command -v firefox-esr >/dev/null 2>&1 || missing+=(firefox-esr)
      command -v WebKitWebDriver >/dev/null 2>&1 || missing+=(webkit2gtk-driver)
      command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
      python3 -c 'import jinja2' >/dev/null 2>&1 || missing+=(python3-jinja2)
      ;;
    --build)
      command -v emcc >/dev/null 2>&1 || missing+=(emscripten)
      ;;
    *)
      echo "setup: unknown option $option (use --test and/or --build)" >&2
      exit 2
      ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
