//! `ganeti-masterd`.

/// Entry point.
pub fn main(_program: &str, _args: &[String]) -> u8 {
    crate::applets::EXIT_NOT_IMPLEMENTED
}
