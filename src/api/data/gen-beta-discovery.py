#!/usr/bin/env python3
"""Writes discovery/beta/apis__<group>__<version>.json: the APIResourceList of every beta and
alpha group-version Kubernetes v1.36 serves with `--runtime-config=api/all=true` and every
feature gate on, in the captured documents' form (compact, upstream's key order).

Sources: the v1.36 OpenAPI v3 documents (shared/upstream/openapi/v3, generated upstream with
every API enabled) give each version's resources, kinds, scopes, verbs and subresources; the
GA documents beside (discovery/) give the shortNames, categories and storageVersionHash a
beta version of a GA resource shares with it; STORAGE below names the storage version of the
resources no GA version has (pkg/kubeapiserver/default_storage_factory_builder.go)."""
import base64, glob, hashlib, json, os, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))
V3 = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../../../shared/upstream/openapi/v3")

# Beta-only resources: storage version (upstream's storage factory overrides, or the only version).
STORAGE = {
    ("certificates.k8s.io", "clustertrustbundles"): "v1beta1",
    ("certificates.k8s.io", "podcertificaterequests"): "v1beta1",
    ("coordination.k8s.io", "leasecandidates"): "v1beta1",
    ("internal.apiserver.k8s.io", "storageversions"): "v1alpha1",
    ("resource.k8s.io", "devicetaintrules"): "v1alpha3",
    ("resource.k8s.io", "resourcepoolstatusrequests"): "v1alpha3",
    ("scheduling.k8s.io", "workloads"): "v1alpha2",
    ("scheduling.k8s.io", "podgroups"): "v1alpha2",
    ("storagemigration.k8s.io", "storageversionmigrations"): "v1beta1",
}
VERB_ORDER = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
ACTION = {"post": "create", "put": "update"}


def ga_resources():
    out = {}
    for f in glob.glob(os.path.join(HERE, "discovery", "api*__v1.json")):
        d = json.load(open(f))
        gv = d["groupVersion"]
        group = gv.split("/")[0] if "/" in gv else ""
        for r in d["resources"]:
            out[(group, r["name"])] = r
    return out


def main():
    ga = ga_resources()
    for f in sorted(glob.glob(os.path.join(V3, "apis__*_openapi.json"))):
        m = re.match(r"apis__(.+)__(v\d+(?:alpha|beta)\d+)_openapi\.json$", os.path.basename(f))
        if not m:
            continue
        group, version = m.groups()
        doc = json.load(open(f))
        res = {}
        for path, ops in doc["paths"].items():
            pm = re.match(r"^/apis/[^/]+/[^/]+/(watch/)?(namespaces/\{namespace\}/)?([^/{]+)(/\{name\})?(/[^/{]+)?$", path)
            if not pm:
                continue
            watch, ns, name, _, sub = pm.groups()
            # A namespaced resource also has a list path across namespaces: any path with
            # `{namespace}` makes it namespaced.
            e = res.setdefault(name, {"ns": False, "verbs": set(), "subs": {}, "kind": None})
            e["ns"] = e["ns"] or bool(ns)
            for meth, op in ops.items():
                if not isinstance(op, dict) or "x-kubernetes-action" not in op:
                    continue
                act = op["x-kubernetes-action"]
                verb = "watch" if watch or act == "watchlist" else ACTION.get(act, act)
                if sub:
                    e["subs"].setdefault(sub[1:], set()).add(verb)
                else:
                    e["verbs"].add(verb)
                    gvk = op.get("x-kubernetes-group-version-kind")
                    if gvk and not e["kind"]:
                        e["kind"] = gvk["kind"]
        items = []
        for name in sorted(res):
            e = res[name]
            kind = e["kind"]
            entry = {"name": name, "singularName": kind.lower(), "namespaced": e["ns"], "kind": kind,
                     "verbs": [v for v in VERB_ORDER if v in e["verbs"]]}
            base = ga.get((group, name))
            if base:
                for k in ("shortNames", "categories", "storageVersionHash"):
                    if k in base:
                        entry[k] = base[k]
            else:
                sv = STORAGE[(group, name)]
                digest = hashlib.sha256(f"{group}/{sv}/{kind}".encode()).digest()[:8]
                entry["storageVersionHash"] = base64.b64encode(digest).decode()
            items.append(entry)
            for sub in sorted(e["subs"]):
                items.append({"name": f"{name}/{sub}", "singularName": "", "namespaced": e["ns"], "kind": kind,
                              "verbs": [v for v in VERB_ORDER if v in e["subs"][sub]]})
        out = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}", "resources": items}
        path = os.path.join(HERE, "discovery", "beta", f"apis__{group}__{version}.json")
        with open(path, "w") as w:
            w.write(json.dumps(out, separators=(",", ":")) + "\n")


main()
