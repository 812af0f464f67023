# Shared by the scripts of the "image" test OS definition of ganeti-rs.
# Ganeti runs them with a clean environment and PATH=/sbin:/bin:/usr/sbin:/usr/bin.

# Magic written at the start of the disk when mkfs.ext4 is not installed, so
# a test can still recognise that create ran.
HEADER_MAGIC="GANETI-RS-TEST-IMAGE"

die() {
  echo "$*" >&2
  exit 1
}

check_size() {
  case "$1" in
    "") ;;
    *[!0-9]*|0) die "invalid value '$1' for the size parameter: want a positive number of MiB" ;;
  esac
}

# Refuses a size parameter larger than the disk at $1 (MiB in $2).
check_fits() {
  [ -n "$2" ] || return 0
  have=$(( $(wc -c < "$1") / 1048576 ))
  [ "$have" -eq 0 ] || [ "$2" -le "$have" ] ||
    die "size parameter $2 MiB is larger than disk 0 ($have MiB)"
}
