//! Block devices (node side): one type per disk template behind a common
//! trait — `diskless`, `file`, `sharedfile`, `blockdev`, `ext`, `plain`
//! (LVM) and `drbd` (8.4 over LVM). Called by `backend::blockdev` on behalf
//! of noded; never reads the cluster config.
//!
//! (Issue 5 contract: the storage helper fills this module.)
