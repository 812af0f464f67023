#!/bin/sh
# Brings up a three-node ganeti-rs cluster under a temporary root, using the
# fake hypervisor, and prints what to try. Nothing outside the temp root is
# touched: the node is virtual (GANETI_ROOTDIR/GANETI_HOSTNAME) and its
# name resolves through the demo's own hosts file.
set -eu

BIN=${1:-target/x86_64-unknown-linux-musl/release/ganeti}
[ -x "$BIN" ] || { echo "demo: $BIN not built; run 'make build' first" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

BASE=$(mktemp -d /tmp/ganeti-demo.XXXXXX)
mkdir -p "$BASE/bin"
for prog in $("$BIN" --list --names | cut -d' ' -f1); do
  ln -s "$BIN" "$BASE/bin/$prog"
done
ln -s "$BIN" "$BASE/bin/ganeti"
# Without our symlinks PATH would reach another Ganeti's programs.
[ -e "$BASE/bin/gnt-cluster" ] ||
  { echo "demo: $BIN did not list its programs (is it named 'ganeti'?)" >&2; exit 1; }
printf '127.0.0.10\tdemo-cluster\n' > "$BASE/hosts"
export PATH="$BASE/bin:$PATH"

# Three virtual nodes. Each gets what a site would configure: noded's
# arguments in /etc/default/ganeti (here: powercycle only records, so
# `gnt-node powercycle` never reboots this host) and a master-ip-setup
# script that records instead of touching the host's interfaces.
for i in 1 2 3; do
  ROOT=$BASE/node$i
  mkdir -p "$ROOT/etc/ganeti/scripts" "$ROOT/etc/default"
  printf '127.0.0.1%s\tnode%s\n' "$i" "$i" >> "$BASE/hosts"
  printf 'NODED_ARGS="--powercycle-action record:%s/powercycle.log"\n' "$ROOT" \
    > "$ROOT/etc/default/ganeti"
  printf '#!/bin/sh\necho "$1 $MASTER_IP/$MASTER_NETMASK dev $MASTER_NETDEV" >> %s/master-ip.log\n' \
    "$ROOT" > "$ROOT/etc/ganeti/scripts/master-ip-setup"
  chmod 755 "$ROOT/etc/ganeti/scripts/master-ip-setup"
done
# Every node allows file storage under its root and has the OS
# definitions: the checkout's test OS "image" (writes an ext4 file system
# onto disk 0) and Debian's ganeti-os-noop when installed.
HERE=$(cd "$(dirname "$0")/.." && pwd)
for i in 1 2 3; do
  ROOT=$BASE/node$i
  printf '%s\n' "$ROOT/srv/ganeti/file-storage" "$ROOT/srv/ganeti/shared-file-storage" \
    > "$ROOT/etc/ganeti/file-storage-paths"
  mkdir -p "$ROOT/srv/ganeti/os"
  ln -s "$HERE/tests/os/image" "$ROOT/srv/ganeti/os/image"
  [ -d /usr/share/ganeti/os/noop ] && ln -s /usr/share/ganeti/os/noop "$ROOT/srv/ganeti/os/noop"
done

on() { node=$1; shift; GANETI_ROOTDIR=$BASE/$node GANETI_HOSTNAME=$node "$@"; }

echo "== gnt-cluster init on node1 (fake hypervisor, diskless/file disks)"
on node1 gnt-cluster init --enabled-hypervisors fake,kvm \
  --enabled-disk-templates diskless,file,sharedfile --master-netdev lo \
  --use-external-mip-script yes --no-etc-hosts -B memory=256M demo-cluster
for n in node2 node3; do
  echo "== $n: start an unconfigured ganeti-noded, give it a join token, gnt-node add"
  on $n ganeti daemon-util start ganeti-noded
  on node1 gnt-cluster join-token --ttl 600 2>/dev/null > "$BASE/$n/token"
  mkdir -p "$BASE/$n/var/lib/ganeti"
  install -m 600 "$BASE/$n/token" "$BASE/$n/var/lib/ganeti/join-token"
  rm -f "$BASE/$n/token"
  on node1 gnt-node add $n
done
echo
echo "== gnt-instance add: a file-disk instance on node2 (fake hypervisor, image OS)"
on node1 gnt-instance add -t file --disk 0:size=64M -o image+default -O size=32 -H fake \
  -B maxmem=256M --no-name-check --no-ip-check -n node2 web1
if [ -d /usr/share/ganeti/os/noop ]; then
  echo "== gnt-instance add: a diskless instance on node3 (noop OS)"
  on node1 gnt-instance add -t diskless -o noop -H fake -B maxmem=128M \
    --no-name-check --no-ip-check -n node3 cache1
fi
echo
echo "== gnt-node list"; on node1 gnt-node list
echo "== gnt-instance list"; on node1 gnt-instance list
echo "== gnt-cluster verify"; on node1 gnt-cluster verify
cat <<MSG

The demo cluster (3 nodes) is running. In your shell, as node1 (the master):

  export GANETI_ROOTDIR=$BASE/node1 GANETI_HOSTNAME=node1 PATH=$BASE/bin:\$PATH
  gnt-cluster info; gnt-node list; gnt-node info node2
  gnt-cluster command uptime       # over node RPC, on every node
  gnt-node modify --drained=yes node3; gnt-node list -o name,role,drained
  gnt-cluster verify; gnt-cluster redist-conf
  gnt-node powercycle --yes node3  # recorded in $BASE/node3/powercycle.log
  gnt-instance info web1; gnt-instance shutdown web1; gnt-instance startup web1
  gnt-instance grow-disk web1 0 64M; gnt-os list
  gnt-instance move -f -n node2 web1     # disks copied node to node over mutual TLS
  gnt-backup export -n node3 web1; gnt-backup list
  gnt-cluster verify-disks; gnt-cluster repair-disk-sizes
  gnt-cluster confd-query node-role-byname node2 --json   # signed UDP query to the candidates
  gnt-debug delay -r 3 0.5         # a job; its log lines stream as it runs
  gnt-job list; gnt-job info 1
  ls $BASE/node2/var/lib/ganeti    # server.pem, hmac.key, ssconf_*, config.data (candidate)
  tail $BASE/*/var/log/ganeti/*.log

Master failover: run it on node2, then ask anyone who the master is:

  GANETI_ROOTDIR=$BASE/node2 GANETI_HOSTNAME=node2 gnt-cluster master-failover
  gnt-cluster getmaster

To tear it down (from the master):

  gnt-instance remove -f web1; gnt-instance remove -f cache1
  gnt-node remove node3; gnt-node remove node2
  gnt-cluster destroy --yes-do-it && rm -rf $BASE
MSG
