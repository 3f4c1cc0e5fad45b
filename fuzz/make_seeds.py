#!/usr/bin/env python3
"""Writes the synthetic seed inputs under corpus/ (run from fuzz/).

Every seed here is built by this script; the OpenBSM reference files in
corpus/bsm_records/openbsm-* are copied separately (see README.md).
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# --- BSM -----------------------------------------------------------------

def cstr16(s):
    b = s.encode() + b"\0"
    return struct.pack(">H", len(b)) + b


def header32(event, sec=1764000000, msec=321):
    return struct.pack(">BIBHHII", 0x14, 0, 11, event, 0, sec, msec)


def header64(event, sec=1764000000, msec=321):
    return struct.pack(">BIBHHQQ", 0x74, 0, 11, event, 0, sec, msec)


def finish(rec, xnu_ex_count=0):
    n = len(rec) + 7
    count = n - xnu_ex_count
    rec = rec[:1] + struct.pack(">I", count) + rec[5:]
    return rec + struct.pack(">BHI", 0x13, 0xB105, count)


def strings(tid, count, items):
    return struct.pack(">BI", tid, count) + b"".join(s.encode() + b"\0" for s in items)


def path(p):
    return b"\x23" + cstr16(p)


def attr32(mode):
    return struct.pack(">BIIIIQI", 0x3E, mode, 0, 0, 0x1000004, 0xABCDEF, 0x1000004)


def subject32(pid, ids=(501, 501, 20, 501, 20), sid=100001):
    return struct.pack(">BIIIIIIII", 0x24, *ids, pid, sid, 0) + bytes(4)


def subject32_ex(pid, ids=(501, 501, 20, 501, 20), sid=100001):
    return struct.pack(">BIIIIIIIII", 0x7A, *ids, pid, sid, 0, 4) + bytes([10, 0, 0, 7])


def subject64_ex6(pid):
    return struct.pack(">BIIIIIIIQI", 0x7C, 501, 501, 20, 501, 20, pid, 9, 0, 16) + bytes(15) + b"\x01"


def ret32(status, value):
    return struct.pack(">BBI", 0x27, status, value & 0xFFFFFFFF)


def ret64(status, value):
    return struct.pack(">BBQ", 0x72, status, value)


def arg32(n, v, text):
    return struct.pack(">BBI", 0x2D, n, v) + cstr16(text)


def cdhash_data(h):
    return struct.pack(">BBBB", 0x21, 3, 0, len(h)) + h


def identity(signer, sid, team, cdhash):
    return (struct.pack(">BI", 0xED, signer) + cstr16(sid) + b"\0" + cstr16(team) + b"\0"
            + struct.pack(">H", len(cdhash)) + cdhash)


CD = bytes(range(20))
KCC = ["kcc", "copy_cred_cache", "/tmp/x.ccache"]


def execve(status=0, count=None, args=KCC, extra=b""):
    r = header32(23)
    r += strings(0x3C, len(args) if count is None else count, args)
    r += strings(0x3D, 2, ["HOME=/Users/a", "KRB5CCNAME=API:"])
    r += path("./kcc") + path("/usr/bin/kcc") + attr32(0o100755)
    if status == 0:
        r += cdhash_data(CD)
    r += extra + b"\x28" + cstr16("label") + subject32_ex(4242) + ret32(status, 0 if status == 0 else -1)
    r += identity(1, "com.apple.zsh", "", bytes([0x5A] * 20))
    return finish(r)


def spawn(status=0):
    r = header32(43190) + arg32(0, 5151, "child PID") + strings(0x3C, 3, KCC)
    r += path("/usr/bin/kcc") + path("/usr/bin/kcc") + attr32(0o100755) + cdhash_data(CD)
    r += subject32(4242) + ret32(status, 0) + identity(0, "org.python.python", "ABCDE12345", CD)
    return finish(r)


def fork(event=2):
    return finish(header32(event) + arg32(0, 777, "child PID") + subject32(4242) + ret32(0, 777))


def script_exec():
    r = header64(23) + strings(0x3C, 3, ["/bin/sh", "./run.sh", "kcc"])
    r += path("./run.sh") + path("/tmp/run.sh") + attr32(0o100755) + path("/bin/sh") + attr32(0o100755)
    r += subject64_ex6(99) + ret64(0, 0)
    return finish(r)


def ex_header_xnu():
    # header32_ex with an IPv4 host, byte count as xnu writes it (8 short)
    r = struct.pack(">BIBHHI", 0x15, 0, 11, 23, 0, 4) + bytes([192, 168, 1, 2]) + struct.pack(">II", 1764000000, 5)
    r += strings(0x3C, 1, ["kcc"]) + path("/usr/bin/kcc") + subject32(1) + ret32(0, 0)
    return finish(r, xnu_ex_count=8)


def file_token(name):
    return struct.pack(">BIIH", 0x11, 1764000000, 0, len(name) + 1) + name.encode() + b"\0"


SIZE = b"\x40"  # read size for the stream half of the target
bsm = {
    "execve-kcc": execve(),
    "execve-failed": execve(status=2),
    "execve-args-capped": execve(count=100),
    "execve-unknown-token": execve(extra=b"\x99\x01\x02"),
    "posix-spawn": spawn(),
    "posix-spawn-failed": spawn(status=2),
    "fork": fork(2),
    "vfork": fork(25),
    "script-exec-header64": script_exec(),
    "header32-ex-xnu-count": ex_header_xnu(),
    # argv past xnu's 16 KiB cap: 180 of 400 strings kept, count unchanged
    "execve-16k-args": execve(count=400, args=["kcc"] + ["a%03d" % i + "x" * 86 for i in range(179)]),
}
for name, rec in bsm.items():
    out("bsm_records", name, rec + SIZE)
trail = file_token("/var/audit/20261127000000.not_terminated") + b"".join(bsm.values()) + file_token("x")
out("bsm_records", "trail-mixed", trail + b"\x07")
out("bsm_records", "stream-with-cut-record", execve() + spawn()[:70] + fork() + b"\x01")

# --- Linux audit text ----------------------------------------------------

ev = "audit(1764000000.123:4242)"
lines = [
    f'type=SYSCALL msg={ev}: arch=c000003e syscall=59 success=yes exit=0 a0=55d0 a1=55d1 a2=55d2 a3=0 items=2 ppid=4000 pid=4242 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="kcc" exe="/usr/bin/kcc" key="exec"',
    f'type=EXECVE msg={ev}: argc=3 a0="kcc" a1="copy_cred_cache" a2=2F746D702F7820792E6363616368650A',
    f'type=CWD msg={ev}: cwd="/home/alice"',
    f'type=PATH msg={ev}: item=0 name="/usr/bin/kcc" inode=131 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL',
    f'type=PATH msg={ev}: item=1 name="/lib64/ld-linux-x86-64.so.2" inode=77 dev=08:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL',
    f'type=PROCTITLE msg={ev}: proctitle=6B636300636F70795F637265645F6361636865',
    f'type=EOE msg={ev}: ',
]
out("audit_records", "execve-event", "\n".join(lines) + "\n")
ev2 = "audit(1764000001.5:4243)"
split = [
    f'node=host type=SYSCALL msg={ev2}: arch=c000003e syscall=59 success=yes exit=0 items=1 ppid=1 pid=9 auid=4294967295 uid=0 gid=0 euid=0 egid=0 comm="sh" exe="/bin/sh"',
    f'node=host type=EXECVE msg={ev2}: argc=2 a0="sh" a1_len=8 a1[0]=6162 a1[1]=63646566 a1[2]="gh"',
    f'node=host type=EOE msg={ev2}: ',
]
out("audit_records", "split-argument", "\n".join(split) + "\n")
out("audit_records", "netlink-payloads",
    f'{ev}: arch=c000003e syscall=59 success=no exit=-2 ppid=1 pid=2 comm="x"\n'
    f'{ev}: argc=1 a0="x"\n{ev}: \n')
out("audit_records", "failed-and-other",
    f'type=SYSCALL msg=audit(1764000002.0:1): arch=c000003e syscall=2 success=yes exit=3 pid=5\n'
    f'type=EOE msg=audit(1764000002.0:1): \n# comment\n\n'
    f'type=UNKNOWN[1329] msg=audit(1764000003.1:2): x=?\n')

# --- Query context ---------------------------------------------------------

contexts = {
    "time-range": {"colsUsed": ["time", "pid", "cmdline"], "constraints": [
        {"name": "time", "affinity": "INTEGER", "list": [{"op": 32, "expr": "1764000000"}, {"op": 16, "expr": "1764003600"}]}]},
    "pid-equals": {"constraints": [{"name": "pid", "affinity": "INTEGER", "list": [{"op": 2, "expr": "4242"}, {"op": 2, "expr": "17"}]}]},
    "legacy-strings": {"constraints": [{"name": "path", "list": "[]", "affinity": "TEXT"}], "colsUsed": None},
    "like-and-float": {"constraints": [{"name": "cmdline", "affinity": "TEXT", "list": [{"op": 65, "expr": "%kcc%"}]},
                                        {"name": "time", "affinity": "INTEGER", "list": [{"op": 8, "expr": "1.5e9"}]}]},
    "empty": {},
}
for name, ctx in contexts.items():
    out("query_context", name, json.dumps(ctx))

# --- eslogger ----------------------------------------------------------------

def token_obj(pid, pv, auid=501):
    return {"auid": auid, "euid": 501, "egid": 20, "ruid": 501, "rgid": 20, "pid": pid, "asid": 100013, "pidversion": pv}


def proc(path, pid, pv, ppid, token_as_array=False, signing_id="com.apple.kcc", team=None, platform=True):
    tok = token_obj(pid, pv)
    if token_as_array:
        tok = [tok[k] for k in ("auid", "euid", "egid", "ruid", "rgid", "pid", "asid", "pidversion")]
    return {
        "audit_token": tok, "parent_audit_token": token_obj(ppid, 1), "responsible_audit_token": token_obj(ppid, 1),
        "ppid": ppid, "original_ppid": ppid, "group_id": pid, "session_id": 100, "codesigning_flags": 570522385,
        "is_platform_binary": platform, "is_es_client": False, "cdhash": "00112233445566778899AABBCCDDEEFF00112233",
        "signing_id": signing_id, "team_id": team,
        "executable": {"path": path, "path_truncated": False, "stat": {"st_mode": 33261, "st_uid": 0, "st_ino": 1152921500312525701}},
        "tty": None, "start_time": "2026-11-27T10:00:00.000001Z",
    }


def message(event_type, event, process, version=9, seq=1):
    return {"schema_version": 1, "version": version, "event_type": event_type, "time": "2026-11-27T10:00:00.123456789Z",
            "mach_time": 123456789, "seq_num": seq, "global_seq_num": seq, "thread": {"thread_id": 77},
            "action_type": 1, "action": {"result": {"result_type": 0, "result": {"auth": 0}}},
            "process": process, "event": event}


shell = proc("/bin/zsh", 4242, 10, 4000, signing_id="com.apple.zsh")
exec_ev = {"exec": {"target": proc("/usr/bin/kcc", 4242, 11, 4000), "args": KCC,
                    "env": ["HOME=/Users/a"], "cwd": {"path": "/Users/a", "path_truncated": False},
                    "script": None, "dyld_exec_path": "/usr/bin/kcc", "last_fd": 2, "fds": [{"fd": 0, "fdtype": 1}],
                    "image_cputype": 16777228, "image_cpusubtype": -2147483646}}
line = json.dumps(message(9, exec_ev, shell), separators=(",", ":")).replace("/", "\\/")
out("eslogger_line", "exec-v9", line + "\n")
exec10 = {"exec": dict(exec_ev["exec"], target=proc("/usr/bin/kcc", 4242, 11, 4000, token_as_array=True))}
out("eslogger_line", "exec-v10-array-tokens", json.dumps(message(9, exec10, shell, version=10)))
fork_ev = {"fork": {"child": proc("/bin/zsh", 5000, 1, 4242)}}
out("eslogger_line", "fork", json.dumps(message(11, fork_ev, shell)))
out("eslogger_line", "exit", json.dumps(message(15, {"exit": {"stat": 9}}, shell)))
out("eslogger_line", "not-json", "eslogger: error: not permitted\n")


# --- journal ------------------------------------------------------------------
# The row journal (src/journal.rs): header, then records of length, CRC32 of
# the length, CRC32 of the payload, payload = arrival time + row JSON.

import zlib


def jheader(version=1):
    h = b"KCAJRNL\0" + struct.pack("<I", version)
    return h + struct.pack("<I", zlib.crc32(h))


def jrecord(arrived, row):
    payload = struct.pack("<q", arrived) + json.dumps(row, separators=(",", ":")).encode()
    n = struct.pack("<I", len(payload))
    return n + struct.pack("<I", zlib.crc32(n)) + struct.pack("<I", zlib.crc32(payload)) + payload


def jrow(i):
    return {"time": 1764000000 + i, "eid": f"{4242 + i}-1764000000.000000005-00112233445566{i:02x}",
            "pid": 4242 + i, "parent": 1, "path": "/usr/bin/kcc", "name": "kcc",
            "cmdline": "kcc copy_cred_cache /tmp/x \\xff", "args": "[\"kcc\",\"copy_cred_cache\",\"/tmp/x\",\"\\\\xff\"]",
            "cwd": "/Users/a", "uid": 501, "euid": 501, "gid": 20, "egid": 20, "auid": None, "username": "alice",
            "parent_path": "/bin/zsh", "parent_cmdline": "-zsh", "tool": "kcc", "action": "copy_cred_cache",
            "ccache": "FILE:/tmp/x", "indicator": "credential_cache_copy", "technique": "T1003,T1558,T1558.003,T1558.005",
            "signing_id": "", "team_id": "", "platform_binary": None, "sha256": "", "source": "linux_audit"}


good = jheader() + b"".join(jrecord(1764000100 + i, jrow(i)) for i in range(3))
out("journal", "three-rows", good)
out("journal", "torn-tail", good[:-17])
out("journal", "zero-tail", good + b"\0" * 64)
flipped = bytearray(good)
flipped[16 + 12 + 40] ^= 4
out("journal", "bit-flip", bytes(flipped))
out("journal", "empty", b"")
out("journal", "header-only", jheader())
out("journal", "future-version", jheader(2) + jrecord(1, jrow(0)))
# A bare payload: the target also frames its input as a record.
out("journal", "payload-row", struct.pack("<q", 1764000100) + json.dumps(jrow(7), separators=(",", ":")).encode())

# --- osquery_server: what osqueryd sends an extension (strict binary
# protocol, one or more messages on one connection), and hostile variants.


def tstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">i", len(b)) + b


def tcall(name, seq, args):
    return b"\x80\x01\x00\x01" + tstr(name) + struct.pack(">i", seq) + args + b"\x00"


def tmap_ss(pairs):
    return b"\x0b\x0b" + struct.pack(">i", len(pairs)) + b"".join(tstr(k) + tstr(v) for k, v in pairs)


def table_call(seq, table, pairs):
    return tcall("call", seq, b"\x0b\x00\x01" + tstr("table") + b"\x0b\x00\x02" + tstr(table)
                 + b"\x0d\x00\x03" + tmap_ss(pairs))


ctx = json.dumps({"constraints": [{"name": "time", "list": [{"op": 4, "expr": "1700000000"}], "affinity": "BIGINT"}],
                  "colsUsed": ["time", "pid"], "colsUsedBitset": 5}, separators=(",", ":"))
out("osquery_server", "ping", tcall("ping", 1, b""))
out("osquery_server", "shutdown", tcall("shutdown", 1, b""))
out("osquery_server", "columns", table_call(2, "kerberos_cache_access", [("action", "columns")]))
out("osquery_server", "generate", table_call(3, "kerberos_cache_access", [("action", "generate"), ("context", ctx)]))
out("osquery_server", "status-then-ping",
    table_call(4, "kerberos_cache_access_status", [("action", "generate"), ("context", "{}")]) + tcall("ping", 5, b""))
out("osquery_server", "unknown-method", tcall("nosuch", 6, b""))
# CVE-2026-43868: 63 bytes announcing a 0x7fffffff-element list.
huge = (b"\x80\x01\x00\x01" + tstr("registerExtension") + struct.pack(">i", 1) + b"\x0d\x00\x02\x0b\x0d"
        + struct.pack(">i", 1) + tstr("table") + b"\x0b\x0f" + struct.pack(">i", 1) + tstr("t")
        + b"\x0d" + struct.pack(">i", 0x7fffffff))
assert len(huge) == 63
out("osquery_server", "cve-2026-43868", huge)
out("osquery_server", "negative-map",
    b"\x80\x01\x00\x01" + tstr("call") + struct.pack(">i", 7) + b"\x0d\x00\x03\x0b\x0b" + struct.pack(">i", -1))
