#!/usr/bin/env bash
# Makes `npm test`, `npm run demo` and `npm run bench` work on a fresh machine:
# installs npm dependencies if they are missing and, where no GPU driver or
# CPU fallback can be found, says what to install (as root on Debian it
# installs Chromium, whose SwiftShader is the CPU fallback, and libvulkan1).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules/webgpu ] || [ ! -d node_modules/vitest ]; then
  echo "[setup] installing npm dependencies (npm ci)..."
  npm ci --no-audit --no-fund
fi
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need+=(libvulkan1)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing ${need[*]} (Chromium for browser tests and its SwiftShader CPU WebGPU; libvulkan1 for Dawn)..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "[setup] missing: ${need[*]}. On Debian/Ubuntu run: sudo apt-get install -y chromium libvulkan1" >&2
    echo "[setup] (a machine with a real GPU and Vulkan driver needs only libvulkan1 for Node; the browser tests need chromium)" >&2
    exit 1
  fi
fi
