#!/bin/sh
# Brings up a one-node ganeti-rs cluster under a temporary root, using the
# fake hypervisor, and prints what to try. Nothing outside the temp root is
# touched: the node is virtual (GANETI_ROOTDIR/GANETI_HOSTNAME) and its
# name resolves through the demo's own hosts file.
set -eu

BIN=${1:-target/x86_64-unknown-linux-musl/release/ganeti}
[ -x "$BIN" ] || { echo "demo: $BIN not built; run 'make build' first" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

BASE=$(mktemp -d /tmp/ganeti-demo.XXXXXX)
NODE=node1
ROOT=$BASE/$NODE
mkdir -p "$BASE/bin" "$ROOT/etc/ganeti"
for prog in $("$BIN" --list --names | cut -d' ' -f1); do
  ln -s "$BIN" "$BASE/bin/$prog"
done
ln -s "$BIN" "$BASE/bin/ganeti"
printf '127.0.0.11\t%s\n127.0.0.10\tdemo-cluster\n' "$NODE" > "$BASE/hosts"
printf '%s\n' "$ROOT/srv/ganeti/file-storage" "$ROOT/srv/ganeti/shared-file-storage" \
  > "$ROOT/etc/ganeti/file-storage-paths"

export GANETI_ROOTDIR="$ROOT" GANETI_HOSTNAME="$NODE" PATH="$BASE/bin:$PATH"

echo "== gnt-cluster init (fake hypervisor, diskless/file disks) under $ROOT"
gnt-cluster init --enabled-hypervisors fake,kvm --enabled-disk-templates diskless,file,sharedfile \
  --master-netdev lo --no-etc-hosts -B memory=256M demo-cluster
echo
echo "== gnt-cluster getmaster"; gnt-cluster getmaster
echo "== gnt-cluster version"; gnt-cluster version
echo "== gnt-cluster info (first lines)"; gnt-cluster info | head -n 12
cat <<MSG

The demo cluster is running. In your shell:

  export GANETI_ROOTDIR=$ROOT GANETI_HOSTNAME=$NODE PATH=$BASE/bin:\$PATH
  gnt-cluster info
  gnt-node list; gnt-group list
  gnt-debug delay -r 3 0.5         # a job; its log lines stream as it runs
  gnt-job list; gnt-job info 1
  gnt-cluster add-tags demo; gnt-cluster search-tags demo
  gnt-debug locks
  ganeti daemon-util check ganeti-masterd
  ls $ROOT/var/lib/ganeti          # config.data, ssconf_*, server.pem, hmac.key
  tail $ROOT/var/log/ganeti/*.log
  ganeti --list                    # every program; those not built yet say so

To tear it down:

  gnt-cluster destroy --yes-do-it && rm -rf $BASE
MSG
