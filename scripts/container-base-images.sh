#!/usr/bin/env bash
# Makes local stand-ins for the base images the Dockerfile names, for a Docker engine that has no image
# registry to pull them from (this project's test machines). Each tag the Dockerfile's FROM lines name is
# left alone when the engine already has it; otherwise it is built here from Debian's packages:
#
#   debian:bookworm-slim   a bookworm root file system made with debootstrap (variant minbase), trimmed the
#                          way Debian's slim image is (no documentation, manual pages or locales)
#   rust:<version>-bookworm the same file system plus gcc and libc6-dev (the linker rustc calls) and
#                          ca-certificates (cargo fetches crates over HTTPS; the authorities added to this
#                          machine's /usr/local/share/ca-certificates are trusted too), with the Rust
#                          toolchain this machine builds Herald with (`rustc --print sysroot`: rustc, cargo
#                          and their libraries) in /usr/local, and CARGO_HOME=/usr/local/cargo as in the
#                          official image
#
# and loaded with `docker import` under the exact tag. Nothing is pulled from a registry. The Debian mirror is
# the one apt on this machine uses (HERALD_DEBIAN_MIRROR overrides it). Runs debootstrap and chroot, so it
# needs root (or sudo). Usage: scripts/container-base-images.sh [Dockerfile]
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKERFILE=${1:-Dockerfile}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# The first Debian mirror apt is configured with (deb822 `URIs:` or one-line `deb URL suite`).
debian_mirror() {
  if [ -n "${HERALD_DEBIAN_MIRROR:-}" ]; then echo "$HERALD_DEBIAN_MIRROR"; return; fi
  local url
  url=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" && $2 ~ /debian\/?$/ { print $2; exit }')
  if [ -z "$url" ]; then
    url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\/.*debian\/?$/) { print $i; exit } }')
  fi
  echo "${url:-http://deb.debian.org/debian}"
}

# The images the FROM lines name, without the stages the Dockerfile itself defines (`FROM build`).
base_images() {
  awk 'toupper($1) == "FROM" {
         i = 2; while ($i ~ /^--/) i++
         if (!($i in stage)) print $i
         if (toupper($(i + 1)) == "AS") stage[$(i + 2)] = 1
       }' "$DOCKERFILE" | sort -u
}

WORK=""
ROOTFS=""
cleanup() {
  if [ -n "$WORK" ]; then $SUDO rm -rf "$WORK"; fi
}
trap cleanup EXIT

# A bookworm minbase root file system in $ROOTFS, made once per run and shared by both stand-ins.
make_rootfs() {
  if [ -n "$ROOTFS" ]; then return; fi
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || { echo "debootstrap is missing: run scripts/install-test-deps.sh" >&2; exit 1; }
  WORK=$(mktemp -d)
  ROOTFS="$WORK/rootfs"
  local mirror
  mirror=$(debian_mirror)
  echo "debootstrap bookworm from $mirror"
  local start=$SECONDS
  $SUDO debootstrap --variant=minbase bookworm "$ROOTFS" "$mirror" >"$WORK/debootstrap.log" 2>&1 || {
    tail -20 "$WORK/debootstrap.log" >&2
    exit 1
  }
  echo "root file system made in $((SECONDS - start)) s"
  # As Debian's slim images: packages installed later leave out documentation, manual pages and locales.
  $SUDO tee "$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  $SUDO find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  $SUDO rm -rf "$ROOTFS"/usr/share/{man,groff,info,lintian,linda,locale}/* "$ROOTFS"/var/cache/apt/archives/*.deb \
    "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/*.log
}

# import TAG [--change ...]: loads $ROOTFS as TAG.
import() {
  local tag=$1 start=$SECONDS
  shift
  $SUDO tar -C "$ROOTFS" --numeric-owner -c . | docker import "$@" - "$tag" >/dev/null
  echo "made $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%d MB", $1 / 1e6 }'), imported in $((SECONDS - start)) s)"
}

make_debian_slim() {
  make_rootfs
  import "$1" --change 'CMD ["bash"]'
}

make_rust() {
  local tag=$1 want sysroot have
  want=${tag#rust:}
  want=${want%%-*}
  sysroot=$(rustc --print sysroot)
  have=$(rustc --version | awk '{ print $2 }')
  if [ ! -x "$sysroot/bin/cargo" ] || [ ! -d "$sysroot/lib/rustlib" ] || [ "$sysroot" = /usr ]; then
    echo "$tag: need a rustup toolchain on this machine (rustc --print sysroot is $sysroot)" >&2
    exit 1
  fi
  # rust:1.95 names the newest 1.95.x; an older toolchain would not build what the tag promises.
  if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" != "$want" ]; then
    echo "$tag: this machine's rustc is $have, older than $want" >&2
    exit 1
  fi
  make_rootfs
  echo "$tag: adding gcc, libc6-dev, ca-certificates and rustc $have"
  $SUDO cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  # Certificate authorities this machine's administrator added (a TLS-inspecting proxy's, say): the build
  # stage fetches crates from the same network this machine does, so it trusts what this machine trusts.
  if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
    $SUDO mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    $SUDO cp -a /usr/local/share/ca-certificates/. "$ROOTFS/usr/local/share/ca-certificates/"
  fi
  $SUDO chroot "$ROOTFS" sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    gcc libc6-dev ca-certificates && apt-get clean && rm -rf /var/lib/apt/lists/*' >"$WORK/apt.log" 2>&1 || {
    tail -20 "$WORK/apt.log" >&2
    exit 1
  }
  $SUDO rm -f "$ROOTFS/etc/resolv.conf"
  $SUDO mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/usr/local/lib" "$ROOTFS/usr/local/cargo"
  $SUDO cp -a "$sysroot/bin/rustc" "$sysroot/bin/cargo" "$sysroot/bin/rustdoc" "$ROOTFS/usr/local/bin/"
  $SUDO cp -a "$sysroot/lib/." "$ROOTFS/usr/local/lib/"
  import "$tag" --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["bash"]'
}

# In name order, so debian:bookworm-slim is imported before the Rust stand-in adds packages to the same
# root file system.
for image in $(base_images); do
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "have $image"
    continue
  fi
  case "$image" in
    debian:bookworm-slim) make_debian_slim "$image" ;;
    rust:*-bookworm) make_rust "$image" ;;
    *)
      echo "no recipe for a stand-in of $image: add one to $0" >&2
      exit 1
      ;;
  esac
done
