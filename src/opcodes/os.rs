//! OS definitions and ExtStorage providers.
//!
//! Plain data only: each struct is one Ganeti opcode, (de)serialized by
//! [`crate::opcodes::OpCode`]. The logic lives in `cmdlib`.

opcode! {
    /// Lists the OS definitions found on the nodes.
    OpOsDiagnose = "OP_OS_DIAGNOSE", summary: - {
        /// Field names requested. Required.
        output_fields: Vec<String> = required, check non_empty;
        /// Names to restrict the query to; empty for all. Default: empty list.
        names: Vec<String> = (Vec::new()), check non_empty;
    }
}

opcode! {
    /// Lists the ExtStorage providers found on the nodes.
    OpExtStorageDiagnose = "OP_EXT_STORAGE_DIAGNOSE", summary: - {
        /// Field names requested. Required.
        output_fields: Vec<String> = required, check non_empty;
        /// Names to restrict the query to; empty for all. Default: empty list.
        names: Vec<String> = (Vec::new()), check non_empty;
    }
}
