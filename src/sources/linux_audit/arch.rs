//! The one table of syscall ABIs (AUDIT_ARCH_* values) and their exec
//! syscall numbers: control installs rules from it, the assembler decides
//! from it whether a SYSCALL record is an exec. Numbers from the kernel's
//! syscall tables (arch/x86/entry/syscalls/syscall_{64,32}.tbl,
//! include/uapi/asm-generic/unistd.h, arch/arm/tools/syscall.tbl).

/// One syscall ABI and its exec syscall numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecArch {
    /// auditctl's name for it: b64 (native) or b32 (compat).
    pub name: &'static str,
    /// AUDIT_ARCH_* value (ELF machine | 64-bit | little-endian flags).
    pub(crate) audit_arch: u32,
    /// execve's number in this ABI.
    pub execve: u32,
    /// execveat's number in this ABI.
    pub(crate) execveat: u32,
}

const X86_64: ExecArch = ExecArch {
    name: "b64",
    audit_arch: 0xc000_003e,
    execve: 59,
    execveat: 322,
};
const I386: ExecArch = ExecArch {
    name: "b32",
    audit_arch: 0x4000_0003,
    execve: 11,
    execveat: 358,
};
// aarch64 and riscv64 share the generic syscall table.
const AARCH64: ExecArch = ExecArch {
    name: "b64",
    audit_arch: 0xc000_00b7,
    execve: 221,
    execveat: 281,
};
const RISCV64: ExecArch = ExecArch {
    audit_arch: 0xc000_00f3,
    ..AARCH64
};
// arm EABI.
const ARM: ExecArch = ExecArch {
    name: "b32",
    audit_arch: 0x4000_0028,
    execve: 11,
    execveat: 387,
};

/// Every ABI whose records we can decide.
const KNOWN: &[ExecArch] = &[X86_64, I386, AARCH64, RISCV64, ARM];

/// x32 runs on AUDIT_ARCH_X86_64 with bit 30 set in the syscall number.
const X32_EXEC_SYSCALLS: [i64; 2] = [0x4000_0000 | 520, 0x4000_0000 | 545];

/// The ABIs a process on this machine can exec through, native first.
#[cfg(target_arch = "x86_64")]
pub const MACHINE_ARCHES: &[ExecArch] = &[X86_64, I386];
/// The ABIs a process on this machine can exec through, native first.
#[cfg(target_arch = "aarch64")]
pub const MACHINE_ARCHES: &[ExecArch] = &[AARCH64, ARM];
/// The ABIs a process on this machine can exec through, native first.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const MACHINE_ARCHES: &[ExecArch] = &[];

/// Whether `number` is execve or execveat for `arch` (an AUDIT_ARCH_*
/// value). None for an arch not listed here.
pub(crate) fn exec_syscall(arch: u32, number: i64) -> Option<bool> {
    let a = KNOWN.iter().find(|a| a.audit_arch == arch)?;
    Some(
        number == i64::from(a.execve)
            || number == i64::from(a.execveat)
            || (arch == X86_64.audit_arch && X32_EXEC_SYSCALLS.contains(&number)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_syscalls_per_arch() {
        for (arch, yes, no) in [
            (0xc000_003e, &[59, 322, 0x4000_0208, 0x4000_0221][..], 11),
            (0x4000_0003, &[11, 358][..], 59),
            (0xc000_00b7, &[221, 281][..], 59),
            (0xc000_00f3, &[221, 281][..], 59),
            (0x4000_0028, &[11, 387][..], 221),
        ] {
            for &n in yes {
                assert_eq!(exec_syscall(arch, n), Some(true), "{arch:x} {n}");
            }
            assert_eq!(exec_syscall(arch, no), Some(false), "{arch:x} {no}");
        }
        // x32 numbers only on x86_64.
        assert_eq!(exec_syscall(0x4000_0003, 0x4000_0208), Some(false));
        assert_eq!(exec_syscall(0xdead, 59), None);
        for a in MACHINE_ARCHES {
            assert_eq!(exec_syscall(a.audit_arch, i64::from(a.execve)), Some(true));
        }
    }
}
