//! `cfgupgrade`: upgrades a `config.data` of Ganeti 2.7 … 3.0 to 3.0.

/// Entry point.
pub fn main(_program: &str, _args: &[String]) -> u8 {
    eprintln!("cfgupgrade: not built yet");
    crate::applets::EXIT_NOT_IMPLEMENTED
}
