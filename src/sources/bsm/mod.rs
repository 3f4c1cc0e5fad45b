//! Source `bsm`: OpenBSM audit records (macOS /dev/auditpipe, or a trail
//! file on any OS).

pub mod events;
pub mod parse;
