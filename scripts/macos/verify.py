#!/usr/bin/env python3
"""Checks the macOS artifacts without a Mac: the universal binary's Mach-O
headers (architectures, minimum macOS, linked libraries, where every
undefined symbol binds, the code signature's page hashes) and the flat
.pkg (xar table of contents and checksum, payload, scripts, receipts).
Standard library only, so it runs wherever the build script does.

  verify.py binary FILE [--minos 11.0] [--allow NAME ...] [--stubs DIR] [--signed arm64|all]
  verify.py pkg FILE --binary FILE

Prints what it checked; exits 1 on the first list of problems.
"""
import argparse
import gzip
import hashlib
import os
import re
import struct
import sys
import xml.etree.ElementTree as ET
import zlib

CPU = {0x0100000C: "arm64", 0x01000007: "x86_64"}
LC_SYMTAB, LC_DYSYMTAB, LC_CODE_SIGNATURE = 0x2, 0xB, 0x1D
LC_BUILD_VERSION, LC_VERSION_MIN_MACOSX = 0x32, 0x24
LC_MAIN = 0x80000028
DYLIB_CMDS = {0xC: "load", 0x80000018: "weak", 0x8000001F: "reexport", 0x20: "lazy", 0x80000023: "upward"}
MH_NOUNDEFS, MH_PIE = 0x1, 0x200000
CS_ADHOC, CS_RUNTIME = 0x2, 0x10000
HASHES = {1: ("sha1", 20), 2: ("sha256", 32), 3: ("sha256", 20), 4: ("sha384", 48)}
ALLOWED = [
    "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation",
    "/System/Library/Frameworks/IOKit.framework/Versions/A/IOKit",
    "/System/Library/Frameworks/OpenDirectory.framework/Versions/A/OpenDirectory",
    "/usr/lib/libSystem.B.dylib",
]


def version(v):
    return "%d.%d" % (v >> 16, (v >> 8) & 0xFF) + (".%d" % (v & 0xFF) if v & 0xFF else "")


def cstr(data, off):
    end = data.index(b"\0", off)
    return data[off:end].decode("utf-8", "replace")


def slices(data):
    (magic,) = struct.unpack_from(">I", data, 0)
    if magic == 0xCAFEBABE:
        (n,) = struct.unpack_from(">I", data, 4)
        for i in range(n):
            cpu, _sub, off, size, _align = struct.unpack_from(">5I", data, 8 + 20 * i)
            yield CPU.get(cpu, hex(cpu)), data[off : off + size]
    else:
        (cpu,) = struct.unpack_from("<I", data, 4)
        yield CPU.get(cpu, hex(cpu)), data


def check_signature(arch, m, dataoff, datasize, problems):
    """Recomputes every code page hash of every CodeDirectory."""
    blob = m[dataoff : dataoff + datasize]
    magic, _length, count = struct.unpack_from(">3I", blob, 0)
    if magic != 0xFADE0CC0:
        problems.append(f"{arch}: code signature is not an embedded signature superblob")
        return "none"
    kinds = []
    cms = 0
    for i in range(count):
        typ, off = struct.unpack_from(">2I", blob, 12 + 8 * i)
        (bmagic, blen) = struct.unpack_from(">2I", blob, off)
        if typ == 0x10000:
            cms = blen - 8
            continue
        if bmagic != 0xFADE0C02:
            continue
        (ver, flags, hash_off, ident_off, _nspecial, ncode, code_limit) = struct.unpack_from(">7I", blob, off + 8)
        hash_size, hash_type, _platform, page_log2 = struct.unpack_from(">4B", blob, off + 36)
        name, size = HASHES.get(hash_type, (None, 0))
        if name is None or size != hash_size:
            problems.append(f"{arch}: unknown hash type {hash_type}")
            continue
        if code_limit != dataoff:
            problems.append(f"{arch}: signature covers {code_limit} bytes, code ends at {dataoff}")
        page = 1 << page_log2 if page_log2 else code_limit
        want = (code_limit + page - 1) // page
        if ncode != want:
            problems.append(f"{arch}: {ncode} page hashes for {want} pages")
        bad = 0
        for p in range(ncode):
            got = hashlib.new(name, m[p * page : min((p + 1) * page, code_limit)]).digest()[:size]
            stored = blob[off + hash_off + p * size : off + hash_off + (p + 1) * size]
            bad += got != stored
        if bad:
            problems.append(f"{arch}: {bad} of {ncode} page hashes ({name}) do not match")
        ident = cstr(blob, off + ident_off)
        kind = "ad-hoc" if flags & CS_ADHOC else "identity"
        if flags & CS_RUNTIME:
            kind += "+runtime"
        kinds.append(f"{kind} {name} {ncode} pages ok={ncode - bad} id={ident} cd=0x{ver:x}")
    if not kinds:
        problems.append(f"{arch}: no CodeDirectory")
    return "; ".join(kinds) + (f"; CMS signature {cms} bytes" if cms else "; no CMS signature")


def check_binary(path, minos, allowed, stubs, signed):
    data = open(path, "rb").read()
    problems = []
    archs = []
    imported = set()
    for arch, m in slices(data):
        archs.append(arch)
        magic, _cpu, _sub, ftype, ncmds, _size, flags, _r = struct.unpack_from("<8I", m, 0)
        if magic != 0xFEEDFACF:
            problems.append(f"{arch}: not a 64-bit Mach-O")
            continue
        off = 32
        dylibs, build, sig, symtab, has_main = [], None, None, None, False
        for _ in range(ncmds):
            cmd, size = struct.unpack_from("<2I", m, off)
            if cmd in DYLIB_CMDS:
                (name_off,) = struct.unpack_from("<I", m, off + 8)
                dylibs.append((DYLIB_CMDS[cmd], cstr(m, off + name_off)))
            elif cmd == LC_BUILD_VERSION:
                platform, mos, sdk = struct.unpack_from("<3I", m, off + 8)
                build = (platform, version(mos), version(sdk))
            elif cmd == LC_VERSION_MIN_MACOSX:
                mos, sdk = struct.unpack_from("<2I", m, off + 8)
                build = (1, version(mos), version(sdk))
            elif cmd == LC_CODE_SIGNATURE:
                sig = struct.unpack_from("<2I", m, off + 8)
            elif cmd == LC_SYMTAB:
                symtab = struct.unpack_from("<4I", m, off + 8)
            elif cmd == LC_MAIN:
                has_main = True
            off += size
        print(f"{arch}: filetype={ftype} flags=0x{flags:x} NOUNDEFS={'yes' if flags & MH_NOUNDEFS else 'NO'} PIE={'yes' if flags & MH_PIE else 'no'} LC_MAIN={'yes' if has_main else 'no'}")
        if ftype != 2 or not has_main:
            problems.append(f"{arch}: not an executable with LC_MAIN")
        if not flags & MH_NOUNDEFS:
            problems.append(f"{arch}: NOUNDEFS is not set")
        if build is None:
            problems.append(f"{arch}: no LC_BUILD_VERSION")
        else:
            print(f"{arch}: platform={build[0]} (1 = macOS) minos={build[1]} sdk={build[2]}")
            if build[0] != 1 or build[1] != minos:
                problems.append(f"{arch}: platform {build[0]} minos {build[1]}, want macOS {minos}")
        for kind, name in dylibs:
            print(f"{arch}: dylib ({kind}) {name}")
            if name not in allowed or kind != "load":
                problems.append(f"{arch}: links {name} ({kind}), not in the allowed list")
        if "/usr/lib/libSystem.B.dylib" not in [n for _, n in dylibs]:
            problems.append(f"{arch}: does not link libSystem")
        # Every undefined symbol must bind (two-level namespace) to one of
        # the listed libraries: no flat lookup, no self/executable ordinal.
        if symtab is None:
            problems.append(f"{arch}: no symbol table")
        else:
            symoff, nsyms, stroff, _strsize = symtab
            count = {}
            for i in range(nsyms):
                strx, ntype, _sect, desc, _value = struct.unpack_from("<IBBHQ", m, symoff + 16 * i)
                if ntype & 0xE0 or ntype & 0x0E != 0 or not ntype & 1:
                    continue
                name = cstr(m, stroff + strx)
                ordinal = (desc >> 8) & 0xFF
                if 1 <= ordinal <= len(dylibs):
                    lib = dylibs[ordinal - 1][1]
                    count[lib] = count.get(lib, 0) + 1
                    if lib != "/usr/lib/libSystem.B.dylib":
                        imported.add((os.path.basename(lib), name))
                else:
                    problems.append(f"{arch}: undefined symbol {name} has library ordinal {ordinal}")
            for lib, n in sorted(count.items()):
                print(f"{arch}: {n} undefined symbols bound to {os.path.basename(lib)}")
        if sig is None:
            # zig signs arm64 only: arm64 macOS refuses unsigned code, Intel
            # macOS does not. A Developer ID signature covers both slices.
            if arch == "arm64" or signed == "all":
                problems.append(f"{arch}: not signed (no LC_CODE_SIGNATURE)")
            else:
                print(f"{arch}: signature: none (Intel macOS runs unsigned code; Developer ID signing covers this slice)")
        else:
            print(f"{arch}: signature: {check_signature(arch, m, sig[0], sig[1], problems)}")
    print(f"architectures: {' '.join(archs)}; size {len(data)} bytes")
    if sorted(archs) != ["arm64", "x86_64"]:
        problems.append(f"architectures are {archs}, want arm64 and x86_64")
    for fw in sorted({f for f, _ in imported}):
        print(f"framework symbols from {fw}: {' '.join(sorted(s for f, s in imported if f == fw))}")
    if stubs:
        listed = set()
        for dirpath, _dirs, files in os.walk(stubs):
            for f in files:
                if f.endswith(".tbd"):
                    text = open(os.path.join(dirpath, f)).read()
                    fw = re.search(r"install-name:\s*'([^']+)'", text).group(1)
                    for block in re.findall(r"symbols:\s*\[([^\]]*)\]", text):
                        listed |= {(os.path.basename(fw), s.strip()) for s in block.split(",") if s.strip()}
        stale = listed - imported
        if stale:
            print("warning: stub symbols the binary no longer imports (run scripts/gen-macos-stubs.sh): "
                  + " ".join(sorted(s for _, s in stale)))
        unknown = imported - listed
        if unknown:
            problems.append("framework symbols not in the stubs: " + " ".join(sorted(s for _, s in unknown)))
    return problems


def xar_files(data):
    magic, hsize, _ver, toc_c, _toc_u, alg = struct.unpack_from(">4sHHQQI", data, 0)
    if magic != b"xar!":
        raise ValueError("not a xar archive")
    toc_raw = data[hsize : hsize + toc_c]
    heap = data[hsize + toc_c :]
    toc = ET.fromstring(zlib.decompress(toc_raw))
    problems = []
    ck = toc.find("toc/checksum")
    if alg != 1 or ck is None or ck.get("style") != "sha1":
        problems.append("TOC checksum is not sha1")
    else:
        o, n = int(ck.findtext("offset")), int(ck.findtext("size"))
        if heap[o : o + n] != hashlib.sha1(toc_raw).digest():
            problems.append("TOC checksum does not match")
    files = {}

    def walk(node, prefix):
        for f in node.findall("file"):
            name = prefix + f.findtext("name")
            d = f.find("data")
            if f.findtext("type") == "directory":
                walk(f, name + "/")
                files[name + "/"] = None
                continue
            o, length = int(d.findtext("offset")), int(d.findtext("length"))
            raw = heap[o : o + length]
            ext = d.find("extracted-checksum")
            enc = d.find("encoding").get("style")
            body = zlib.decompress(raw) if enc == "application/x-gzip" else raw
            if hashlib.new(ext.get("style"), body).hexdigest() != ext.text:
                problems.append(f"{name}: extracted checksum does not match")
            files[name] = body

    walk(toc.find("toc"), "")
    return files, problems


def cpio(data):
    """odc (070707) entries: name -> (mode, uid, gid, bytes)."""
    out, off = {}, 0
    while True:
        h = data[off : off + 76]
        if h[:6] != b"070707":
            raise ValueError(f"bad cpio header at {off}")
        mode, uid, gid = (int(h[i : i + 6], 8) for i in (18, 24, 30))
        namesize, filesize = int(h[59:65], 8), int(h[65:76], 8)
        name = data[off + 76 : off + 76 + namesize - 1].decode()
        body = data[off + 76 + namesize : off + 76 + namesize + filesize]
        off += 76 + namesize + filesize
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, uid, gid, body)


def check_pkg(path, binary):
    data = open(path, "rb").read()
    files, problems = xar_files(data)
    print(f"pkg: {len(data)} bytes; xar entries: {' '.join(sorted(files))}")
    comps = [n[:-1] for n in files if n.endswith(".pkg/")]
    if len(comps) != 1 or "Distribution" not in files:
        return problems + [f"want one component and a Distribution, got {sorted(files)}"]
    comp = comps[0]
    info = ET.fromstring(files[comp + "/PackageInfo"])
    loc = info.get("install-location")
    print(f"pkg: component {comp} identifier={info.get('identifier')} version={info.get('version')} install-location={loc}")
    post = info.find("scripts/postinstall")
    print(f"pkg: postinstall={post.get('file') if post is not None else None}")
    if post is None:
        problems.append("no postinstall in PackageInfo")
    payload = cpio(gzip.decompress(files[comp + "/Payload"]))
    for name, (mode, uid, gid, body) in sorted(payload.items()):
        print(f"pkg payload: {oct(mode)} {uid}:{gid} {len(body):>9} {name}")
    want = open(binary, "rb").read()
    ext = [n for n in payload if n.endswith(".ext")]
    if len(ext) != 1:
        problems.append(f"payload has {len(ext)} .ext files")
    else:
        mode, uid, gid, body = payload[ext[0]]
        if body != want:
            problems.append(f"{ext[0]} differs from {binary}")
        if (mode, uid, gid) != (0o100755, 0, 0):
            problems.append(f"{ext[0]} is {oct(mode)} {uid}:{gid}, want 0100755 0:0 (root:wheel)")
        parent = os.path.dirname(ext[0]) or "."
        pmode = payload.get(parent, (0,))[0]
        if pmode & 0o1000 or pmode & 0o022 or not pmode & 0o040000:
            problems.append(f"directory {parent} of the .ext is {oct(pmode)}: sticky or writable by others")
    for name, (mode, uid, gid, _b) in payload.items():
        if (uid, gid) != (0, 0) or mode & 0o002:
            problems.append(f"payload {name}: {oct(mode)} {uid}:{gid}")
    scripts = cpio(gzip.decompress(files[comp + "/Scripts"])) if comp + "/Scripts" in files else {}
    for name, (mode, uid, gid, body) in sorted(scripts.items()):
        print(f"pkg scripts: {oct(mode)} {uid}:{gid} {len(body):>6} {name}")
    if "./postinstall" not in scripts or not scripts["./postinstall"][0] & 0o100:
        problems.append("Scripts has no executable postinstall")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("binary")
    b.add_argument("file")
    b.add_argument("--minos", default="11.0")
    b.add_argument("--allow", action="append", default=[])
    b.add_argument("--stubs")
    b.add_argument("--signed", choices=["arm64", "all"], default="arm64",
                   help="slices that must carry a signature (all: Developer ID builds)")
    p = sub.add_parser("pkg")
    p.add_argument("file")
    p.add_argument("--binary", required=True)
    a = ap.parse_args()
    try:
        if a.what == "binary":
            problems = check_binary(a.file, a.minos, ALLOWED + a.allow, a.stubs, a.signed)
        else:
            problems = check_pkg(a.file, a.binary)
    except (OSError, ValueError, KeyError, struct.error, zlib.error, ET.ParseError) as e:
        problems = [f"cannot read {a.file}: {e}"]
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    print(("verify: OK " if not problems else "verify: FAILED ") + a.file)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
