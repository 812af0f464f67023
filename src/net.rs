//! Host networking seen from one node: name resolution and address checks
//! (Ganeti's `netutils`). Bridges, taps and routes for instances join here
//! with the hypervisors.

pub mod hostname;
