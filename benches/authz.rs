//! RBAC decisions at 10,000 RoleBindings (plus upstream's bootstrap policy), from kapi's
//! in-memory index, each against baselines measured in the same run:
//! - the same decision with the bootstrap policy only (no user bindings at all);
//! - the same decision by a scan of every binding of the namespace and the cluster, as
//!   upstream's rule resolver walks its listers (no subject index).
//!
//! Two layouts: the 10,000 RoleBindings spread over 1,000 namespaces (10 each), and all in
//! one namespace (the scan's worst case). Each binding grants one user `edit`'s rules.
//!
//! Run: `cargo bench --bench authz` (in a debug build, `--profile dev -- --noplot`: criterion's
//! plots take minutes unoptimized).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use kapi::authn::UserInfo;
use kapi::authz::bootstrap_policy::objects;
use kapi::authz::rbac::policy::{Binding, Policy, Role, RoleKind};
use kapi::authz::rbac::rules::Request;
use serde_json::json;

const ROLE_BINDINGS: usize = 10_000;

struct World {
    indexed: Policy,
    /// For the scan: RoleBindings by namespace and roles by name, as upstream's listers
    /// index them.
    bindings: HashMap<String, Vec<Arc<Binding>>>,
    cluster_bindings: Vec<Arc<Binding>>,
    roles: HashMap<String, Arc<Role>>,
}

fn world(namespaces: usize, with_bindings: bool) -> World {
    let o = objects();
    let roles: Vec<Arc<Role>> = o
        .cluster_roles
        .iter()
        .map(|r| Arc::new(Role::from_json(r)))
        .collect();
    let cluster_bindings: Vec<Arc<Binding>> = o
        .cluster_role_bindings
        .iter()
        .filter_map(|b| Binding::from_json(b).map(Arc::new))
        .collect();
    let mut bindings = Vec::new();
    if with_bindings {
        for i in 0..ROLE_BINDINGS {
            let ns = format!("ns-{}", i % namespaces);
            bindings.push(Arc::new(
                Binding::from_json(&json!({
                    "metadata": {"name": format!("rb-{i}"), "namespace": ns},
                    "roleRef": {"kind": "ClusterRole", "name": "system:aggregate-to-edit"},
                    "subjects": [{"kind": "User", "name": format!("user-{i}")}],
                }))
                .expect("a binding"),
            ));
        }
    }
    let indexed = Policy::build(
        roles.clone(),
        Vec::new(),
        cluster_bindings.clone(),
        bindings.clone(),
    );
    let mut by_ns: HashMap<String, Vec<Arc<Binding>>> = HashMap::new();
    for b in bindings {
        by_ns.entry(b.namespace.clone()).or_default().push(b);
    }
    World {
        indexed,
        bindings: by_ns,
        cluster_bindings,
        roles: roles.into_iter().map(|r| (r.name.clone(), r)).collect(),
    }
}

/// Upstream's walk: every ClusterRoleBinding, then every RoleBinding of the namespace, each
/// subject compared, the role's rules checked.
fn scan(w: &World, user: &UserInfo, req: &Request<'_>) -> bool {
    let ns = req.namespace();
    let check = |b: &Binding| {
        if !b.subjects.iter().any(|s| s.applies_to(user, &b.namespace)) {
            return false;
        }
        let Some(role) = w.roles.get(&b.role_name) else {
            return false;
        };
        b.role_kind == RoleKind::ClusterRole && role.rules.iter().any(|r| r.allows(req))
    };
    w.cluster_bindings.iter().any(|b| check(b))
        || w.bindings.get(ns).into_iter().flatten().any(|b| check(b))
}

fn user(name: &str) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: vec!["system:authenticated".into()],
        ..UserInfo::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rbac_10k_rolebindings");
    for (layout, namespaces) in [("spread", 1000), ("one_namespace", 1)] {
        let w = world(namespaces, true);
        let baseline = world(namespaces, false);
        // user-7's binding is in ns-7 (spread) or ns-0 (one namespace).
        let ns = format!("ns-{}", 7 % namespaces);
        let alice = user("user-7");
        let allowed = Request::Resource {
            verb: "create",
            group: "",
            resource: "configmaps",
            subresource: None,
            name: "",
            namespace: &ns,
        };
        let denied = Request::Resource {
            verb: "get",
            group: "",
            resource: "nodes",
            subresource: None,
            name: "n1",
            namespace: "",
        };
        let denied_in_ns = Request::Resource {
            verb: "create",
            group: "rbac.authorization.k8s.io",
            resource: "roles",
            subresource: None,
            name: "",
            namespace: &ns,
        };
        assert!(w.indexed.authorize(&alice, &allowed).0);
        assert!(scan(&w, &alice, &allowed));
        assert!(!w.indexed.authorize(&alice, &denied_in_ns).0);
        for (case, req) in [
            ("allowed", &allowed),
            ("denied_in_namespace", &denied_in_ns),
            ("denied_cluster", &denied),
        ] {
            g.bench_function(format!("{layout}/{case}/indexed"), |b| {
                b.iter(|| black_box(w.indexed.authorize(black_box(&alice), black_box(req))))
            });
            g.bench_function(format!("{layout}/{case}/bootstrap_only"), |b| {
                b.iter(|| {
                    black_box(
                        baseline
                            .indexed
                            .authorize(black_box(&alice), black_box(req)),
                    )
                })
            });
            g.bench_function(format!("{layout}/{case}/scan"), |b| {
                b.iter(|| black_box(scan(&w, black_box(&alice), black_box(req))))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
