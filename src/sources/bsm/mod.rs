//! Source `bsm`: OpenBSM audit records (macOS /dev/auditpipe, or a trail
//! file on any OS).

#[cfg(target_os = "macos")]
pub mod auditpipe;
pub mod events;
pub mod parse;
