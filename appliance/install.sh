#!/usr/bin/env bash
# Lays the Nexus appliance onto a plain Debian 12 host: the nexus executable, the nexus system user,
# the systemd units, and nginx (whose site first boot renders). Packer runs it with --image; on a live
# host it is also the upgrade path (data in /var/lib/nexus is kept unless --image, and a site first
# boot rendered is rendered again from the new executable's template).
#
#   install.sh [--binary PATH] [--image] [--root DIR] [--no-system]
#
#   --binary PATH  the nexus executable (default: ./nexus next to this directory, else dist/nexus)
#   --image        building an image: remove every per-instance secret and first-boot result, so each
#                  instance makes its own on first boot; do not start services
#   --root DIR     install under DIR instead of / (implies --no-system)
#   --no-system    do not touch packages, users or systemd (files only)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
root=""
binary=""
image=0
system=1

die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary="$2"; shift 2 ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root="$(cd "$2" && pwd)"; system=0; shift 2 ;;
    --image) image=1; shift ;;
    --no-system) system=0; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

if [ -z "$binary" ]; then
  for candidate in "$src/nexus" "$src/dist/nexus"; do
    if [ -f "$candidate" ]; then binary="$candidate"; break; fi
  done
fi
[ -n "$binary" ] && [ -f "$binary" ] || die "no nexus executable (build it with npm run build, or pass --binary PATH)"
[ -x "$binary" ] || die "$binary is not executable"
for f in appliance/nexus.service appliance/nexus-first-boot.service appliance/nexus-tls.path \
  appliance/nexus-tls-reload.service appliance/nexus-backup.service appliance/nexus-backup.timer \
  nginx/nexus.conf.template; do
  [ -f "$src/$f" ] || die "missing $src/$f"
done

if [ "$system" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "run as root (or use --root DIR / --no-system)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nginx ca-certificates
  if ! getent passwd nexus >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/nexus --no-create-home --shell /usr/sbin/nologin \
      --comment "Nexus appliance" nexus
  fi
fi

echo "install.sh: installing into ${root:-/}"
install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system" "$root/etc/nginx/conf.d" \
  "$root/etc/nginx/sites-enabled" "$root/usr/local/share/nexus/nginx" "$root/usr/local/share/doc/nexus"
# Replace atomically so a running nexus keeps its (old) executable until restarted.
install -m 0755 "$binary" "$root/usr/local/bin/.nexus.new"
mv -f "$root/usr/local/bin/.nexus.new" "$root/usr/local/bin/nexus"
install -m 0644 "$src/appliance/nexus.service" "$src/appliance/nexus-first-boot.service" \
  "$src/appliance/nexus-tls.path" "$src/appliance/nexus-tls-reload.service" \
  "$src/appliance/nexus-backup.service" "$src/appliance/nexus-backup.timer" "$root/etc/systemd/system/"
install -m 0644 "$src/nginx/nexus.conf.template" "$root/usr/local/share/nexus/nginx/"
for doc in appliance.md backup.md; do
  if [ -f "$src/docs/$doc" ]; then install -m 0644 "$src/docs/$doc" "$root/usr/local/share/doc/nexus/"; fi
done
# Where nexus-backup.service writes (only once /etc/nexus/backup-passphrase exists); kept by --image.
if [ "$system" = 1 ]; then
  install -d -m 0700 -o nexus -g nexus "$root/var/backups/nexus"
else
  install -d -m 0700 "$root/var/backups/nexus"
fi
# Debian's default site also listens on port 80; the Nexus site owns 80 (redirect) and 443.
rm -f "$root/etc/nginx/sites-enabled/default"

if [ "$image" = 1 ]; then
  # Never bake secrets or per-instance state into an image: master key, database, setup token,
  # certificate and key, rendered site and config are all made by first boot on each instance.
  rm -rf "$root/var/lib/nexus" "$root/var/cache/nexus" "$root/etc/nexus"
  rm -f "$root/etc/nginx/conf.d/nexus.conf"
fi

# An upgrade of a host that has been through first boot: render its nginx site again from the new
# executable's template (the route map may have changed), keeping the names, ports and certificate
# first boot chose. A host that has not booted yet gets its site from first boot itself.
if [ "$image" = 0 ] && [ -f "$root/etc/nexus/nginx-site.json" ]; then
  "$root/usr/local/bin/nexus" first-boot --site-only --root "${root:-/}" \
    || die "the new executable could not render the nginx site (the old site is left in place)"
fi

if [ "$system" = 1 ]; then
  systemctl daemon-reload
  systemctl enable nexus-first-boot.service nexus.service nexus-tls.path nexus-backup.timer nginx.service
  if [ "$image" = 0 ] && [ -d /run/systemd/system ]; then
    systemctl start nexus-first-boot.service
    systemctl restart nexus.service
    systemctl start nexus-tls.path nexus-backup.timer
    systemctl reload-or-restart nginx.service
    echo "install.sh: Nexus is running; the setup URL and token are in: journalctl -u nexus-first-boot"
  fi
fi
echo "install.sh: done"
