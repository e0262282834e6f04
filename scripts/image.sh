#!/usr/bin/env bash
# Builds the container image from the repository's Dockerfile, as it is, with podman (no daemon),
# on a machine that cannot pull from any image registry:
#   1. debian:bookworm-slim, the runtime base the Dockerfile names, made with debootstrap
#      (minbase) and slimmed as the official image is (no docs, man pages, locales, apt lists);
#   2. rust:<version>-slim-bookworm, the builder it names, made from that base and this machine's
#      own Rust toolchain, which must be the version the Dockerfile names;
#   3. the image itself: `podman build` of the Dockerfile, with the crates downloaded into (and
#      read from) this machine's cargo registry cache.
# Each step is skipped when its result is there (the base images by name and content label, the
# image's layers by podman's build cache), so a second run only rebuilds what changed.
#
# Usage: scripts/image.sh [IMAGE]        (default localhost/sluice:latest)
# Environment:
#   DEBIAN_MIRROR     mirror for debootstrap and apt in the base (default http://deb.debian.org/debian)
#   CONTAINERS_CONF   podman settings (default scripts/podman/containers.conf, see there)
# Prints the image's name, size and the time each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf 'image: %s\n' "$*" >&2; }
fail() { printf 'image: FAILED: %s\n' "$*" >&2; exit 1; }

IMAGE="${1:-localhost/sluice:latest}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/scripts/podman/containers.conf}"

scripts/setup.sh image
# debootstrap and podman's store of images the tests and the manifests use need root.
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || fail "needs root (debootstrap, rootful podman): run it as root"
  exec sudo --preserve-env=HOME,CARGO_HOME,RUSTUP_HOME,CONTAINERS_CONF,DEBIAN_MIRROR \
    env "PATH=$PATH" "$ROOT/scripts/image.sh" "$@"
fi

# The two base images, as the Dockerfile names them.
rust_from=$(awk 'toupper($1) == "FROM" && $2 ~ /^rust:/ { print $2; exit }' Dockerfile)
debian_from=$(awk 'toupper($1) == "FROM" && $2 ~ /^debian:/ { print $2; exit }' Dockerfile)
[ -n "$rust_from" ] && [ -n "$debian_from" ] || fail "the Dockerfile names no rust:… and debian:… images"
suite=${debian_from#debian:}
suite=${suite%-slim}
rust_version=${rust_from#rust:}
rust_version=${rust_version%%-*}
DEBIAN_IMAGE="docker.io/library/$debian_from"
RUST_IMAGE="docker.io/library/$rust_from"

elapsed() { echo "$(($(date +%s) - $1)) s"; }
# A hash of step N's lines of this script (and of FILE, if given): a base image made by other
# lines is made again.
recipe() { { sed -n "/^# --- $1\./,/^# --- $(($1 + 1))\./p" "$ROOT/scripts/image.sh"; [ -z "${2:-}" ] || cat "$2"; } | sha256sum | cut -c1-12; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- 1. debian:<suite>-slim -------------------------------------------------------------------
made_from="debootstrap --variant=minbase $suite $MIRROR, recipe $(recipe 1)"
if [ "$(podman image inspect --format '{{index .Labels "made-from"}}' "$DEBIAN_IMAGE" 2>/dev/null)" != "$made_from" ]; then
  started=$(date +%s)
  log "making $DEBIAN_IMAGE: debootstrap --variant=minbase $suite $MIRROR"
  rootfs="$work/rootfs"
  debootstrap --variant=minbase "$suite" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  # As the official slim images: dpkg leaves documentation, man pages and translations out of
  # every later install, apt keeps no package lists or downloads.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/slim" <<'EOF'
APT::Keep-Downloaded-Packages "false";
Acquire::GzipIndexes "true";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,locale}/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  tar --numeric-owner -C "$rootfs" -c . |
    podman import --quiet --change 'CMD ["bash"]' --change "LABEL made-from=\"$made_from\"" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$rootfs"
  log "made $DEBIAN_IMAGE in $(elapsed "$started")"
fi

# --- 2. rust:<version>-slim-<suite> -----------------------------------------------------------
# No toolchain can be downloaded: the builder gets this machine's own, which must be the
# version the Dockerfile pins.
rustc_version=$(rustc --version)
case "$rustc_version" in
  "rustc $rust_version."* | "rustc $rust_version "*) ;;
  *) fail "the Dockerfile builds with Rust $rust_version, this machine has $rustc_version (rustup toolchain install $rust_version)" ;;
esac
full_version=$(rustc --version | awk '{ print $2 }')
base_id=$(podman image inspect --format '{{.Id}}' "$DEBIAN_IMAGE")
made_from="$rustc_version on $base_id, recipe $(recipe 2 scripts/podman/rust.Containerfile)"
if [ "$(podman image inspect --format '{{index .Labels "made-from"}}' "$RUST_IMAGE" 2>/dev/null)" != "$made_from" ]; then
  started=$(date +%s)
  log "making $RUST_IMAGE from $DEBIAN_IMAGE and $rustc_version"
  sysroot=$(rustc --print sysroot)
  mkdir -p "$work/rust/toolchain"
  # The compiler, cargo and the standard library; not the documentation (share/).
  for d in bin lib libexec etc; do
    [ -e "$sysroot/$d" ] || continue
    cp -al "$sysroot/$d" "$work/rust/toolchain/" 2>/dev/null || cp -a "$sysroot/$d" "$work/rust/toolchain/"
  done
  podman build --quiet --network host --build-arg "RUST_VERSION=$full_version" \
    --label "made-from=$made_from" -f scripts/podman/rust.Containerfile -t "$RUST_IMAGE" \
    "$work/rust" >/dev/null
  rm -rf "$work/rust"
  log "made $RUST_IMAGE in $(elapsed "$started")"
fi

# --- 3. the image -----------------------------------------------------------------------------
started=$(date +%s)
registry="${CARGO_HOME:-$HOME/.cargo}/registry"
mkdir -p "$registry"
log "podman build -t $IMAGE (Dockerfile)"
podman build --network host --volume "$registry:/usr/local/cargo/registry" -t "$IMAGE" -f Dockerfile . \
  >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; fail "podman build"; }
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
log "built $IMAGE in $(elapsed "$started"): $((size / 1000000)) MB"
