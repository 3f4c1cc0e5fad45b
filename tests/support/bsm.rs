//! BSM records built token by token, big-endian, in xnu's layouts (see
//! shared/research on BSM), real trails and seeded garbage: for the BSM
//! reader tests (also the unit tests in src/sources/bsm, which include this
//! file by `#[path]`) and the replay bench.

use std::path::Path;

/// Builds records token by token, in the layouts of the research notes.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn header32(event: u16, sec: u32, msec: u32) -> Writer {
        let mut w = Writer::default();
        w.u8(0x14)
            .u32(0)
            .u8(11)
            .u16(event)
            .u16(0)
            .u32(sec)
            .u32(msec);
        w
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    /// u16 length including the NUL, the bytes, the NUL.
    pub fn counted_str(&mut self, s: &str) -> &mut Self {
        self.u16(u16::try_from(s.len() + 1).unwrap())
            .raw(s.as_bytes())
            .u8(0)
    }
    pub fn strings(&mut self, id: u8, count: u32, strings: &[&str]) -> &mut Self {
        self.u8(id).u32(count);
        for s in strings {
            self.raw(s.as_bytes()).u8(0);
        }
        self
    }
    pub fn exec_args(&mut self, count: u32, args: &[&str]) -> &mut Self {
        self.strings(0x3c, count, args)
    }
    pub fn exec_env(&mut self, env: &[&str]) -> &mut Self {
        self.strings(0x3d, u32::try_from(env.len()).unwrap(), env)
    }
    pub fn path(&mut self, p: &str) -> &mut Self {
        self.u8(0x23).counted_str(p)
    }
    pub fn text(&mut self, t: &str) -> &mut Self {
        self.u8(0x28).counted_str(t)
    }
    pub fn attr32(&mut self, mode: u32, uid: u32, gid: u32) -> &mut Self {
        self.u8(0x3e)
            .u32(mode)
            .u32(uid)
            .u32(gid)
            .u32(0x0100_0004)
            .u64(0x00ab_cdef)
            .u32(0x0100_0004)
    }
    pub fn arg32(&mut self, n: u8, value: u32, text: &str) -> &mut Self {
        self.u8(0x2d).u8(n).u32(value).counted_str(text)
    }
    pub fn cdhash_data(&mut self, cdhash: &[u8; 20]) -> &mut Self {
        self.u8(0x21).u8(3).u8(0).u8(20).raw(cdhash)
    }
    pub fn subject32(&mut self, ids: [u32; 5], pid: u32, sid: u32) -> &mut Self {
        self.u8(0x24);
        for v in ids {
            self.u32(v);
        }
        self.u32(pid).u32(sid).u32(0).raw(&[0, 0, 0, 0])
    }
    pub fn subject32_ex(&mut self, ids: [u32; 5], pid: u32, sid: u32) -> &mut Self {
        self.u8(0x7a);
        for v in ids {
            self.u32(v);
        }
        self.u32(pid).u32(sid).u32(0).u32(4).raw(&[10, 1, 2, 3])
    }
    pub fn return32(&mut self, status: u8, value: u32) -> &mut Self {
        self.u8(0x27).u8(status).u32(value)
    }
    pub fn identity(
        &mut self,
        signer: u32,
        signing_id: &str,
        team_id: &str,
        cdhash: &[u8],
    ) -> &mut Self {
        self.u8(0xed).u32(signer).counted_str(signing_id).u8(0);
        self.counted_str(team_id).u8(0);
        self.u16(u16::try_from(cdhash.len()).unwrap()).raw(cdhash)
    }
    /// Adds the trailer and sets both byte counts.
    pub fn finish(&mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len() + 7).unwrap();
        self.u8(0x13).u16(0xb105).u32(len);
        self.buf[1..5].copy_from_slice(&len.to_be_bytes());
        std::mem::take(&mut self.buf)
    }
}

/// Seeded xorshift bytes: garbage that is the same on every run.
pub fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A real trail vendored in tests/data/bsm.
pub fn real_trail(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/bsm")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
