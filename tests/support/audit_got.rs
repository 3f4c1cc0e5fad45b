//! An assembled audit exec copied out of the assembler's pooled buffers, for
//! the assembler's unit tests and tests/audit_records.rs. Include with
//! `#[path = "…/support/audit_got.rs"] mod audit_got;` from a module that has
//! `AuditExec` in scope.
#![allow(dead_code)]

use super::AuditExec;

/// An emitted exec, copied out of the pooled buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct Got {
    pub serial: u64,
    pub sec: i64,
    pub msec: u32,
    pub arch: u32,
    pub syscall: i64,
    pub success: Option<bool>,
    pub pid: i64,
    pub ppid: i64,
    pub uid: Option<i64>,
    pub euid: Option<i64>,
    pub gid: Option<i64>,
    pub egid: Option<i64>,
    pub auid: Option<i64>,
    pub exe: Option<Vec<u8>>,
    pub argc: Option<u32>,
    pub argv: Vec<Vec<u8>>,
    pub cwd: Option<Vec<u8>>,
    pub incomplete: bool,
}

impl Got {
    pub fn of(e: &AuditExec) -> Got {
        Got {
            serial: e.header.serial,
            sec: e.header.sec,
            msec: e.header.msec,
            arch: e.arch,
            syscall: e.syscall,
            success: e.success,
            pid: e.pid,
            ppid: e.ppid,
            uid: e.uid,
            euid: e.euid,
            gid: e.gid,
            egid: e.egid,
            auid: e.auid,
            exe: e.exe().map(<[u8]>::to_vec),
            argc: e.argc(),
            argv: e.argv().to_vec(),
            cwd: e.cwd().map(<[u8]>::to_vec),
            incomplete: e.incomplete,
        }
    }

    pub fn exe_text(&self) -> Option<String> {
        self.exe
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn cwd_text(&self) -> Option<String> {
        self.cwd
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn argv_text(&self) -> Vec<String> {
        self.argv
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }
}
