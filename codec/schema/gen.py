#!/usr/bin/env python3
"""Regenerates codec/schema/k8s.schema from the project's reference pack.

Inputs (Kubernetes v1.36, Apache-2.0; see shared/upstream/README.md for how they were made):
  proto/kubernetes-1.36.binpb   FileDescriptorSet compiled from the generated.proto files
  gofields/fields.tsv           how every Go API field serializes (JSON name, omitempty, Go shape, order)
  gofields/types.tsv            Go type -> protobuf message name

The output joins the two: for every protobuf message, its fields in Go declaration order (which
is the order encoding/json writes them in) with the JSON name, protobuf number and type, and the
Go shape that decides when a zero value is written. Run by hand when the reference data changes:

    pip install protobuf
    python3 codec/schema/gen.py ../shared/upstream > codec/schema/k8s.schema

Line format (tab separated):
  M <message> [special]                         a message; special names a custom JSON form
  F <json> <num> <type> <ref> <rep> <shape> <flags>
                                                a field, in Go order. type: proto scalar type,
                                                'message' or 'map'; ref: message name, or for a
                                                map 'keytype:valuetype|message'; rep: 1 when
                                                repeated; shape: pointer|value|slice|map|typemeta;
                                                flags: e=omitempty z=omitzero i=inline, '-' for none
  K <group> <version> <kind> <message>          a kind with TypeMeta (a top-level object)
"""
import csv
import sys
from collections import defaultdict

from google.protobuf import descriptor_pb2

# The API group each Go package directory is registered under (k8s.io/api/<dir>/<version>).
GROUPS = {
    "core": "", "apps": "apps", "autoscaling": "autoscaling", "batch": "batch", "policy": "policy",
    "extensions": "extensions", "admission": "admission.k8s.io",
    "admissionregistration": "admissionregistration.k8s.io", "apidiscovery": "apidiscovery.k8s.io",
    "apiserverinternal": "internal.apiserver.k8s.io", "authentication": "authentication.k8s.io",
    "authorization": "authorization.k8s.io", "certificates": "certificates.k8s.io",
    "coordination": "coordination.k8s.io", "discovery": "discovery.k8s.io", "events": "events.k8s.io",
    "flowcontrol": "flowcontrol.apiserver.k8s.io", "imagepolicy": "imagepolicy.k8s.io",
    "networking": "networking.k8s.io", "node": "node.k8s.io", "rbac": "rbac.authorization.k8s.io",
    "resource": "resource.k8s.io", "scheduling": "scheduling.k8s.io", "storage": "storage.k8s.io",
    "storagemigration": "storagemigration.k8s.io",
}
OTHER_PACKAGES = {
    "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1": ("apiextensions.k8s.io", "v1"),
    "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1": ("apiregistration.k8s.io", "v1"),
    "k8s.io/apimachinery/pkg/apis/meta/v1": ("meta.k8s.io", "v1"),
}

# Messages whose JSON form is written by hand-written Go code rather than by field.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "microtime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "rawjson",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs": "stringlist",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "rawextension",
    "k8s.io.apimachinery.pkg.runtime.Unknown": "unknown",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON": "rawjson",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": "propsorarray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": "propsorbool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": "propsorstrings",
}
for pkg in ("authentication", "authorization", "certificates"):
    for ver in ("v1", "v1beta1", "v1alpha1"):
        SPECIAL[f"k8s.io.api.{pkg}.{ver}.ExtraValue"] = "stringlist"

SCALAR = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 8: "bool", 9: "string",
          12: "bytes", 13: "uint32", 17: "sint32", 18: "sint64"}


def group_version(go_package):
    if go_package in OTHER_PACKAGES:
        return OTHER_PACKAGES[go_package]
    parts = go_package.split("/")
    if parts[:2] == ["k8s.io", "api"] and parts[2] in GROUPS:
        return GROUPS[parts[2]], parts[3]
    return None


def main(root):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(f"{root}/proto/kubernetes-1.36.binpb", "rb") as f:
        fds.ParseFromString(f.read())
    messages = {}  # full name -> DescriptorProto
    map_entries = {}  # full name of a map entry -> (key type, value type or message)
    for file in fds.file:
        for m in file.message_type:
            full = f"{file.package}.{m.name}"
            messages[full] = m
            for n in m.nested_type:
                if n.options.map_entry:
                    key, val = n.field[0], n.field[1]
                    v = val.type_name.lstrip(".") if val.type == 11 else SCALAR[val.type]
                    map_entries[f"{full}.{n.name}"] = f"{SCALAR[key.type]}:{v}"

    with open(f"{root}/gofields/types.tsv") as f:
        types = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    with open(f"{root}/gofields/fields.tsv") as f:
        fields = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    go_fields = defaultdict(list)
    for row in fields:
        go_fields[(row["go_package"], row["go_type"])].append(row)
    proto_of = {}
    for t in types:
        if t["proto_message"] and t["proto_message"] in messages:
            proto_of[(t["go_package"], t["go_type"])] = t["proto_message"]

    out = []
    kinds = []
    described = set()
    for key, full in sorted(proto_of.items(), key=lambda kv: kv[1]):
        described.add(full)
        desc = messages[full]
        by_num = {f.number: f for f in desc.field}
        line = ["M", full] + ([SPECIAL[full]] if full in SPECIAL else [])
        out.append("\t".join(line))
        rows = sorted(go_fields.get(key, []), key=lambda r: int(r["field_index"]))
        has_typemeta = False
        for r in rows:
            if r["json_name"] == "-" or r["go_exported"] != "true":
                continue
            flags = ""
            if r["json_omitempty"] == "true":
                flags += "e"
            if r["json_omitzero"] == "true":
                flags += "z"
            if r["json_inline"] == "true":
                flags += "i"
            if r["go_field"] == "TypeMeta" and not r["proto_number"]:
                has_typemeta = True
                out.append("\t".join(["F", "", "0", "typemeta", "-", "0", "typemeta", flags or "-"]))
                continue
            if not r["proto_number"] or r["proto_wire"] == "-":
                continue  # JSON-only fields with no protobuf form (none that carry data)
            num = int(r["proto_number"])
            pf = by_num[num]
            rep = "1" if pf.label == 3 else "0"
            if pf.type == 11:
                ref = pf.type_name.lstrip(".")
                if ref in map_entries:
                    typ, ref, rep = "map", map_entries[ref], "0"
                else:
                    typ = "message"
            else:
                typ, ref = SCALAR[pf.type], "-"
            name = r["json_name"] if r["json_inline"] != "true" else ""
            out.append("\t".join(["F", name or "", str(num), typ, ref, rep, r["go_kind"], flags or "-"]))
        gv = group_version(key[0])
        if has_typemeta and gv:
            kinds.append("\t".join(["K", gv[0] or "-", gv[1], key[1], full]))
    # metav1.WatchEvent has no TypeMeta but is registered as a kind in every group version.
    kinds.append("\t".join(["K", "meta.k8s.io", "v1", "WatchEvent", "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent"]))
    # Messages with no Go field table (e.g. meta.v1.Timestamp, apiextensions v1beta1): protobuf
    # order and names, every field written only when present.
    for full in sorted(messages):
        if full in described:
            continue
        desc = messages[full]
        line = ["M", full] + ([SPECIAL[full]] if full in SPECIAL else [])
        out.append("\t".join(line))
        for pf in desc.field:
            rep = "1" if pf.label == 3 else "0"
            if pf.type == 11:
                ref = pf.type_name.lstrip(".")
                if ref in map_entries:
                    typ, ref, rep, shape = "map", map_entries[ref], "0", "map"
                else:
                    typ, shape = "message", "slice" if rep == "1" else "pointer"
            else:
                typ, ref, shape = SCALAR[pf.type], "-", "slice" if rep == "1" else "pointer"
            out.append("\t".join(["F", pf.json_name or pf.name, str(pf.number), typ, ref, rep, shape, "e"]))
    sys.stdout.write("# Generated by codec/schema/gen.py from Kubernetes v1.36 (Apache-2.0). Do not edit.\n")
    sys.stdout.write("\n".join(out + kinds) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/upstream")
