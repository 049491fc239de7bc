#!/usr/bin/env bash
# Verifies the EXPERIMENTAL vfkit backend (engine/backend/vfkit) on a Mac: the one thing this
# project could not do where it is built (Linux). Run from the repository root on macOS 13+:
#
#   bash scripts/verify-macos.sh
#
# It installs vfkit with Homebrew when missing, builds the engine, checks that the guest
# assets are present (they are made on Linux: see NEED_ASSETS below), then runs each check
# and prints a report (also written to verify-macos-report.txt): PASS or FAIL with what vfkit
# and the engine said. Paste that file into the issue. Nothing is left
# running: every vfkit it starts ends before the script does.
set -uo pipefail
cd "$(dirname "$0")/.."

REPORT=verify-macos-report.txt
HOME_DIR="${MICROVM_HOME:-$HOME/.cache/microvm}"
export MICROVM_BACKEND=vfkit
say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
result() { say "$(printf '%-14s %s' "$1" "$2")"; }

if [ "$(uname -s)" != Darwin ]; then
  echo "verify-macos: this checks the macOS backend and runs on macOS only (this is $(uname -s))" >&2
  exit 2
fi
: >"$REPORT"

say "== host"
say "macOS $(sw_vers -productVersion) ($(sw_vers -buildVersion)), $(uname -m), $(sysctl -n machdep.cpu.brand_string 2>/dev/null)"
say "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

say "== vfkit"
if ! command -v vfkit >/dev/null; then
  if ! command -v brew >/dev/null; then
    say "vfkit is missing and Homebrew is not installed: install Homebrew (https://brew.sh) or vfkit itself, then run again"
    exit 2
  fi
  brew install vfkit || { say "brew install vfkit failed"; exit 2; }
fi
say "$(command -v vfkit): $(vfkit --version 2>&1)"

# The root disk of an image is an ext4 file made with mke2fs (1.47.1 or later), which macOS lacks.
if ! command -v mke2fs >/dev/null; then
  if [ ! -x "$(brew --prefix e2fsprogs 2>/dev/null)/sbin/mke2fs" ]; then
    brew install e2fsprogs || { say "brew install e2fsprogs failed"; exit 2; }
  fi
  PATH="$(brew --prefix e2fsprogs)/sbin:$PATH"
  export PATH
fi
say "$(command -v mke2fs): $(mke2fs -V 2>&1 | head -1)"

say "== build"
if [ ! -d node_modules ]; then npm ci >/dev/null || { say "npm ci failed"; exit 2; }; fi
npm run --silent build >/dev/null 2>&1 || { say "npm run build failed: run it by hand to see why"; exit 2; }
say "dist/ built"

# The guest kernels, initramfs and default image are built by `npm run setup`, which needs
# Debian's tools and runs on Linux only; it makes the aarch64 guest files (Apple silicon)
# beside the x86_64 ones (Intel Macs).
if [ ! -f "$HOME_DIR/assets/manifest.json" ] || [ ! -d "$HOME_DIR/images/default" ]; then
  say "NEED_ASSETS: $HOME_DIR/assets and $HOME_DIR/images/default are missing."
  say "  On a Linux machine (Debian 12), in this repository:"
  say "    npm ci && npm run setup"
  say "  then copy them here:"
  say "    mkdir -p $HOME_DIR && rsync -a LINUX_HOST:.cache/microvm/assets LINUX_HOST:.cache/microvm/images $HOME_DIR/"
  say "  and run this script again."
  exit 2
fi

say "== checks"
before=$(pgrep -x vfkit | sort || true)
node -e '
  const { vfkitBackend } = require("./dist/engine.js");
  vfkitBackend.host().then((host) => {
    console.log(JSON.stringify(host, null, 2));
    process.exit(host.ok ? 0 : 1);
  });
' >verify-macos-host.json 2>&1
if [ $? -eq 0 ]; then result PASS "host detection (capabilities below)"; else result FAIL "host detection"; fi
cat verify-macos-host.json >>"$REPORT"

info=$(node dist/cli.js info 2>&1)
if grep -q '"experimental": true' <<<"$info"; then result PASS "microvm info names vfkit as experimental"; else result FAIL "microvm info"; fi
printf '%s\n' "$info" >>"$REPORT"

# The probe boots the kernel and initramfs alone: the agent writes MICROVM_PROBE_OK and powers off.
node -e '
  const { vfkitBackend } = require("./dist/engine.js");
  vfkitBackend.probe().then((r) => {
    console.log(JSON.stringify({ ...r, console: r.console.slice(-2000) }, null, 2));
    process.exit(r.ok ? 0 : 1);
  }, (err) => { console.log(`${err.code}: ${err.message}`); process.exit(1); });
' >verify-macos-probe.json 2>&1
if [ $? -eq 0 ]; then result PASS "probe boot: kernel + initramfs start under vfkit and power off"; else result FAIL "probe boot"; fi
cat verify-macos-probe.json >>"$REPORT"

# Workload VMs: the engine reaches the guest agent on vsock port 1024 through vfkit's agent socket.
check_workload() {
  local name=$1
  shift
  local out
  out=$("$@" 2>&1)
  local rc=$?
  if [ $rc -eq 0 ]; then
    result PASS "$name"
  else
    result FAIL "$name (exit $rc)"
  fi
  printf '%s\n' "$out" | tail -5 | sed 's/^/    /' | tee -a "$REPORT"
}
# The embedded default image is linux/amd64 (busybox built for x86_64): on Apple silicon the
# guest must be arm64, so a Debian image is pulled from Docker Hub (its linux/arm64 entry).
image_args=()
if [ "$(uname -m)" = arm64 ]; then image_args=(--image debian:bookworm-slim); fi
check_workload "boot ${image_args[1]:-the default image}, exec uname -a" node dist/cli.js run ${image_args[@]+"${image_args[@]}"} -- uname -a
share=$(mktemp -d)
echo "hello from the Mac" >"$share/hello.txt"
# nofilter: the framework serves the folder itself, so filtered shares are refused on vfkit.
check_workload "mount a folder, read a file in it" node dist/cli.js run ${image_args[@]+"${image_args[@]}"} --mount "$share:/mnt/host:ro:nofilter" -- cat /mnt/host/hello.txt
rm -rf "$share"

leftover=$(comm -13 <(printf '%s\n' "$before") <(pgrep -x vfkit | sort) | tr '\n' ' ')
if [ -n "${leftover// /}" ]; then result FAIL "vfkit processes left running: $leftover"; else result PASS "no vfkit left running"; fi
rm -f verify-macos-host.json verify-macos-probe.json
say "== report written to $REPORT"
