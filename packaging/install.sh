#!/bin/sh
# Installs ganeti-rs: the static `ganeti` binary, one symlink per program,
# man pages, systemd units and Ganeti's state directories.
#
# Works from a release tarball (files next to packaging/) and from the source
# tree (`make install` calls it with --binary). POSIX sh only.
#
# Layout, for PREFIX (default /usr/local):
#   PREFIX/sbin/ganeti                       the binary
#   PREFIX/sbin/{ganeti-*,gnt-*,cfgupgrade}  symlinks to it (daemons, admin commands)
#   PREFIX/bin/{hail,hbal,hspace}            symlinks to ../sbin/ganeti (htools)
#   PREFIX/share/man/man7, man8              man pages
#   PREFIX/lib/systemd/system                units, ExecStart pointing at PREFIX/sbin
#   /var/lib/ganeti, /var/log/ganeti, /var/run/ganeti   state (always under /, plus DESTDIR)
set -eu

usage() {
  cat <<USAGE
usage: install.sh [--prefix DIR] [--destdir DIR] [--binary FILE] [--unitdir DIR]
  --prefix DIR   installation prefix (default /usr/local)
  --destdir DIR  stage everything under DIR (packaging); no systemctl calls
  --binary FILE  the ganeti binary (default: ganeti next to packaging/)
  --unitdir DIR  systemd unit directory (default PREFIX/lib/systemd/system)
USAGE
}

here=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
destdir=
binary=$here/ganeti
unitdir=

while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --destdir) destdir=$2; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    --binary) binary=$2; shift 2 ;;
    --binary=*) binary=${1#*=}; shift ;;
    --unitdir) unitdir=$2; shift 2 ;;
    --unitdir=*) unitdir=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 1 ;;
  esac
done

case $prefix in
  /*) ;;
  *) echo "install.sh: --prefix must be absolute" >&2; exit 1 ;;
esac
[ -n "$unitdir" ] || unitdir=$prefix/lib/systemd/system
[ -x "$binary" ] || { echo "install.sh: no executable binary at $binary" >&2; exit 1; }

sbindir=$prefix/sbin
bindir=$prefix/bin
mandir=$prefix/share/man
D=$destdir

install -d "$D$sbindir" "$D$bindir" "$D$mandir/man7" "$D$mandir/man8" "$D$unitdir"
install -m 0755 "$binary" "$D$sbindir/ganeti"

# One link per program, as the binary lists them.
names=$("$binary" --list --names)
echo "$names" | while read -r name kind; do
  case $kind in
    daemon|admin) ln -sfn ganeti "$D$sbindir/$name" ;;
    tool) ln -sfn ../sbin/ganeti "$D$bindir/$name" ;;
    *) echo "install.sh: unknown kind '$kind' for $name" >&2; exit 1 ;;
  esac
done

for page in "$here"/man/*.7; do
  [ -e "$page" ] && install -m 0644 "$page" "$D$mandir/man7/"
done
for page in "$here"/man/*.8; do
  [ -e "$page" ] && install -m 0644 "$page" "$D$mandir/man8/"
done

for unit in "$here"/systemd/*.service "$here"/systemd/*.timer "$here"/systemd/*.target; do
  [ -e "$unit" ] || continue
  sed "s|@SBINDIR@|$sbindir|g" "$unit" >"$D$unitdir/$(basename "$unit")"
  chmod 0644 "$D$unitdir/$(basename "$unit")"
done

# Ganeti's state directories and modes (its ensure-dirs).
install -d -m 0755 "$D/var/lib/ganeti"
install -d -m 0770 "$D/var/log/ganeti"
install -d -m 0775 "$D/var/run/ganeti"

echo "installed ganeti-rs into ${D:-}$prefix (units in ${D:-}$unitdir)"

if [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
fi
