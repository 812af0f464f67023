//! `ssconf_*` files.
