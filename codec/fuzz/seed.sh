#!/usr/bin/env bash
# Fills corpus/<target>/ with seeds made from the round-trip fixtures (testdata/roundtrip):
#   pb_decode:   every .pb (an enveloped object), and every fixture's message without its
#                envelope, after the two-byte selector of its kind (see src/lib.rs)
#   json_decode: every .json, as is and compacted
#   envelope:    every .pb, as is and as a protobuf watch frame, and all frames in a row
# Needs python3. Idempotent: seed files are named by fixture and rewritten.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 - "$here/../testdata/roundtrip" "$here/../schema/k8s.schema" "$here/corpus" <<'PY'
import json, os, sys

fixtures, schema, corpus = sys.argv[1:4]

# The kind selectors: the index of each kind's K line in the schema, in file order
# (Schema::kinds()). Core kinds have group "-"; meta kinds also serve any version.
kinds = {}
with open(schema) as f:
    for line in f:
        cols = line.rstrip("\n").split("\t")
        if cols[0] == "K":
            group = "" if cols[1] == "-" else cols[1]
            kinds[(group, cols[2], cols[3])] = len(kinds)

def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i

def put_varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)

def bytes_field(n, b):
    return put_varint(n << 3 | 2) + put_varint(len(b)) + b

def raw_message(pb):
    """Field 2 (raw) of the k8s\\0 envelope (runtime.Unknown)."""
    assert pb[:4] == b"k8s\0"
    i = 4
    while i < len(pb):
        key, i = varint(pb, i)
        assert key & 7 == 2, "envelope fields are length-delimited"
        n, i = varint(pb, i)
        if key >> 3 == 2:
            return pb[i : i + n]
        i += n
    return b""

def write(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

counts = {}
frames = []
for file in sorted(os.listdir(fixtures)):
    if not file.endswith(".pb"):
        continue
    name = file[: -len(".pb")]
    parts = name.split(".")
    kind, version, group = parts[-1], parts[-2], ".".join(parts[:-2])
    group = "" if group == "core" else group
    with open(os.path.join(fixtures, file), "rb") as f:
        pb = f.read()
    with open(os.path.join(fixtures, name + ".json"), "rb") as f:
        js = f.read()

    write("pb_decode", name + ".pb", pb)
    index = kinds.get((group, version, kind), kinds.get(("meta.k8s.io", "v1", kind)))
    if index is None:
        sys.exit(f"{name}: no kind {group}/{version} {kind} in the schema")
    write("pb_decode", name + ".raw", index.to_bytes(2, "big") + raw_message(pb))

    write("json_decode", name + ".json", js)
    compact = json.dumps(json.loads(js), separators=(",", ":"), ensure_ascii=False)
    write("json_decode", name + ".compact.json", compact.encode())

    event = bytes_field(1, b"ADDED") + bytes_field(2, bytes_field(1, pb))
    frame = len(event).to_bytes(4, "big") + event
    frames.append(frame)
    write("envelope", name + ".pb", pb)
    write("envelope", name + ".frame", frame)
write("envelope", "all.frames", b"".join(frames))

for target in sorted(os.listdir(corpus)):
    print(f"corpus/{target}: {len(os.listdir(os.path.join(corpus, target)))} files")
PY
