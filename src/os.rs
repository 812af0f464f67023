//! OS definitions (node side, Ganeti's OS API 10/15/20): discovery on the
//! search path, `variants.list`, `parameters.list`, and running the
//! `create`/`import`/`export`/`rename`/`verify` scripts with Ganeti's
//! environment. Called by `backend::os` on behalf of noded.
//!
//! (Issue 5 contract: the OS helper fills this module.)
