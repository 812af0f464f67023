//! LUXI: the masterd unix-socket protocol.
