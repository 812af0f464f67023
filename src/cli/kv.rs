//! Ganeti's `key=value,key=value` option values (`-B`, `-H`, `--disk`, `--net`).
