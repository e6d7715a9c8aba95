#!/usr/bin/env python3
"""Regenerates src/ssa/data/field-types.tsv, the type model server-side apply merges and tracks
ownership by, from Kubernetes v1.36's OpenAPI v3 documents (src/api/data/openapi/*__v*_openapi.json.gz,
Apache-2.0), as upstream's type converter turns OpenAPI into structured-merge-diff types (v3,
because it carries the defaults of list-map keys, such as a port's protocol).

Lines:
  D <definition> <type>            a named type
  F <definition> <property> <type> [zero] a field of a struct definition; `zero` is what the
                                   field is in the kind's zero Go object (`{}` for a value struct,
                                   `null` for a nil slice, map or pointer not omitted; `o` when Go
                                   omits its zero value: "", 0, false, [], {}), from fields.tsv: a
                                   create is compared with that object, as upstream compares it
                                   with `New()`, and what Go would omit is not compared
  K <apiVersion> <kind> <definition>
Types: s scalar or untyped atomic value (IntOrString, RawExtension, JSON: upstream owns them
whole) · u deduced (shape taken from the value; CRDs' preserve-unknown-fields) · @<definition> ·
{ a granular struct (its fields on F lines) · } an atomic struct · m<t> / M<t> a granular /
atomic map of t · l<t> an atomic list · S<t> a set · L<key,key=default>;<t> a map list with
keys (a key's schema default as JSON).

    python3 src/ssa/data/gen-field-types.py ../shared/upstream/gofields/fields.tsv \\
        src/api/data/openapi/*__v*_openapi.json.gz > src/ssa/data/field-types.tsv

fields.tsv (the reference pack's table of how the Go API types of v1.36.2 serialize) is read for
its package, type, JSON name, omitempty, Go shape, underlying element type and custom JSON
methods columns.
"""
import gzip
import json
import sys

zero = {}
for line in open(sys.argv[1]).read().splitlines()[1:]:
    c = line.split("\t")
    pkg, typ, name, omitempty, kind, underlying, methods = c[0], c[1], c[3], c[4], c[7], c[22], c[23]
    if not name or name == "-" or not pkg.startswith("k8s.io/"):
        continue
    definition = "io.k8s." + pkg[len("k8s.io/"):].replace("/", ".") + "." + typ
    if kind == "value" and underlying == "struct" and "MarshalJSON" not in methods:
        zero[(definition, name)] = "{}"
    elif omitempty == "false" and (kind in ("slice", "map", "pointer") or
                                   (kind == "value" and underlying.startswith(("map[", "[]")))):
        zero[(definition, name)] = "null"
    elif omitempty == "true" and (kind in ("slice", "map") or (kind == "value" and underlying != "struct")):
        zero[(definition, name)] = "o"

defs = {}
for path in sys.argv[2:]:
    defs.update(json.load(gzip.open(path)).get("components", {}).get("schemas", {}))


def resolve(s):
    all_of = s.get("allOf")
    if all_of and len(all_of) == 1 and "$ref" in all_of[0]:
        return {**s, "$ref": all_of[0]["$ref"]}
    return s


def key_spec(item, keys):
    name = item.get("$ref", "").rsplit("/", 1)[-1]
    props = defs.get(name, {}).get("properties", {})
    out = []
    for k in keys:
        d = props.get(k, {}).get("default")
        out.append(k if d is None else k + "=" + json.dumps(d, separators=(",", ":")))
    return ",".join(out)


def ty(s):
    s = resolve(s)
    ref = s.get("$ref")
    if ref:
        return "@" + ref.rsplit("/", 1)[-1]
    t = s.get("type")
    if t == "array":
        items = resolve(s.get("items", {}))
        item = ty(items)
        lt = s.get("x-kubernetes-list-type")
        if lt == "set":
            return "S" + item
        if lt == "map":
            return "L" + key_spec(items, s.get("x-kubernetes-list-map-keys", [])) + ";" + item
        if lt is None and s.get("x-kubernetes-patch-strategy") == "merge":
            key = s.get("x-kubernetes-patch-merge-key")
            return ("L" + key_spec(items, [key]) + ";" + item) if key else ("S" + item)
        return "l" + item
    if t == "object" or "additionalProperties" in s:
        if "additionalProperties" in s and "properties" not in s:
            atomic = s.get("x-kubernetes-map-type") == "atomic"
            return ("M" if atomic else "m") + ty(s["additionalProperties"])
        return "s"
    return "s"


out = []
for name in sorted(defs):
    d = defs[name]
    props = d.get("properties")
    if props is not None:
        atomic = d.get("x-kubernetes-map-type") == "atomic"
        out.append("\t".join(["D", name, "}" if atomic else "{"]))
        for p in sorted(props):
            z = zero.get((name, p))
            out.append("\t".join(["F", name, p, ty(props[p])] + ([z] if z else [])))
    else:
        out.append("\t".join(["D", name, ty(d)]))
    for gvk in d.get("x-kubernetes-group-version-kind", []):
        av = gvk["version"] if not gvk["group"] else gvk["group"] + "/" + gvk["version"]
        out.append("\t".join(["K", av, gvk["kind"], name]))
print("# Generated by src/ssa/data/gen-field-types.py from Kubernetes v1.36 OpenAPI v3 (Apache-2.0).")
print("\n".join(out))
