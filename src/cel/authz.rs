//! Kubernetes' CEL authz library: the `authorizer` variable of admission policies and webhook
//! matchConditions. `authorizer.group(g).resource(r)[.subresource(s)][.namespace(ns)][.name(n)]
//! .check(verb)` and `authorizer.path(p).check(verb)` ask kapi's authorizer chain
//! (`crate::authz`, in memory, synchronous) about the request's user, or about a service
//! account (`authorizer.serviceAccount(ns, name)`); a decision answers `allowed()`,
//! `reason()`, `errored()`, `error()`. `authorizer.requestResource` is a check preset to the
//! request's own resource. `fieldSelector`/`labelSelector` are accepted and kept on the check;
//! no authorizer kapi has decides by selectors (upstream's RBAC ignores them too).

use std::sync::Arc;

use ::cel::common::ast::{CallExpr, Expr, IdedExpr};
use ::cel::objects::Opaque;
use ::cel::{ExecutionError, Value as CelValue};

use super::library::{Call, Overload, fail};
use crate::api::request::{ResourceRequest, Verb};
use crate::authn::UserInfo;
use crate::authz::{Attributes, Chain, Decision as Answer};

pub(super) const OVERLOADS: &[(&str, Overload)] = &[
    ("path", path),
    ("group", group),
    ("serviceAccount", service_account),
    ("resource", resource),
    ("subresource", subresource),
    ("namespace", namespace),
    ("name", name),
    ("fieldSelector", field_selector),
    ("labelSelector", label_selector),
    ("check", check),
    ("allowed", allowed),
    ("reason", reason),
    ("errored", errored),
    ("error", error),
    (REQUEST_RESOURCE, request_resource),
];

/// The internal member function `authorizer.requestResource` is rewritten to (cel-go declares
/// it as a variable with a dotted name; the `cel` crate would select a field of the opaque).
const REQUEST_RESOURCE: &str = "@requestResource";

/// The request's resource, as `authorizer.requestResource` checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestResource {
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

/// `kubernetes.authorization.Authorizer`: the chain and whom it decides for.
#[derive(Clone)]
pub struct Authorizer {
    chain: Arc<Chain>,
    user: Arc<UserInfo>,
    request: Option<Arc<RequestResource>>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Authorizer({})", self.user.name)
    }
}

impl PartialEq for Authorizer {
    fn eq(&self, other: &Authorizer) -> bool {
        self.user == other.user && self.request == other.request
    }
}

impl Eq for Authorizer {}

impl Opaque for Authorizer {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.Authorizer"
    }
}

impl Authorizer {
    /// The `authorizer` variable of a request by `user` on `request` (None: no resource).
    pub fn new(chain: Arc<Chain>, user: UserInfo, request: Option<RequestResource>) -> Authorizer {
        Authorizer {
            chain,
            user: Arc::new(user),
            request: request.map(Arc::new),
        }
    }

    pub fn value(self) -> CelValue {
        CelValue::Opaque(Arc::new(self))
    }
}

/// `kubernetes.authorization.PathCheck`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathCheck {
    authorizer: Authorizer,
    path: String,
}

impl Opaque for PathCheck {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.PathCheck"
    }
}

/// `kubernetes.authorization.GroupCheck`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupCheck {
    authorizer: Authorizer,
    group: String,
}

impl Opaque for GroupCheck {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.GroupCheck"
    }
}

/// `kubernetes.authorization.ResourceCheck`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResourceCheck {
    authorizer: Authorizer,
    target: RequestResource,
    field_selector: String,
    label_selector: String,
}

impl Opaque for ResourceCheck {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.ResourceCheck"
    }
}

/// `kubernetes.authorization.Decision`. kapi's authorizers decide from memory and never err,
/// so `error` is always empty; it is kept for the library's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision {
    allowed: bool,
    reason: String,
    error: String,
}

impl Opaque for Decision {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.Decision"
    }
}

type Out = Option<Result<CelValue, ExecutionError>>;

fn this<T: Opaque + 'static>(c: &Call) -> Option<&T> {
    match &c.this {
        Some(CelValue::Opaque(o)) => o.downcast_ref::<T>(),
        _ => None,
    }
}

fn string_arg(c: &Call, i: usize) -> Option<&str> {
    match c.arg(i) {
        Some(CelValue::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn opaque<T: Opaque + 'static>(v: T) -> Out {
    Some(Ok(CelValue::Opaque(Arc::new(v))))
}

fn path(c: &Call) -> Out {
    let a = this::<Authorizer>(c)?;
    let p = string_arg(c, 0)?;
    if p.trim().is_empty() {
        return Some(Err(fail("path must not be empty")));
    }
    opaque(PathCheck {
        authorizer: a.clone(),
        path: p.to_string(),
    })
}

fn group(c: &Call) -> Out {
    let a = this::<Authorizer>(c)?;
    opaque(GroupCheck {
        authorizer: a.clone(),
        group: string_arg(c, 0)?.to_string(),
    })
}

/// `serviceAccount(ns, name)`: an authorizer for that service account's user
/// (`system:serviceaccount:<ns>:<name>`, groups `system:serviceaccounts[:<ns>]`).
fn service_account(c: &Call) -> Out {
    let a = this::<Authorizer>(c)?;
    let (ns, name) = (string_arg(c, 0)?, string_arg(c, 1)?);
    if !crate::kinds::meta::subdomain_errors(name).is_empty() {
        return Some(Err(fail("Invalid service account name")));
    }
    if !crate::kinds::meta::label_errors(ns).is_empty() {
        return Some(Err(fail("Invalid service account namespace")));
    }
    let user = UserInfo {
        name: format!("system:serviceaccount:{ns}:{name}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
        ],
        ..UserInfo::default()
    };
    opaque(Authorizer {
        chain: a.chain.clone(),
        user: Arc::new(user),
        request: a.request.clone(),
    })
}

fn resource(c: &Call) -> Out {
    let g = this::<GroupCheck>(c)?;
    let r = string_arg(c, 0)?;
    if r.trim().is_empty() {
        return Some(Err(fail("resource must not be empty")));
    }
    opaque(ResourceCheck {
        authorizer: g.authorizer.clone(),
        target: RequestResource {
            group: g.group.clone(),
            resource: r.to_string(),
            ..RequestResource::default()
        },
        field_selector: String::new(),
        label_selector: String::new(),
    })
}

/// A ResourceCheck with one of its settings changed.
fn with(c: &Call, set: fn(&mut ResourceCheck, &str)) -> Out {
    let mut r = this::<ResourceCheck>(c)?.clone();
    set(&mut r, string_arg(c, 0)?);
    opaque(r)
}

fn subresource(c: &Call) -> Out {
    with(c, |r, s| r.target.subresource = s.to_string())
}

fn namespace(c: &Call) -> Out {
    with(c, |r, s| r.target.namespace = s.to_string())
}

fn name(c: &Call) -> Out {
    with(c, |r, s| r.target.name = s.to_string())
}

fn field_selector(c: &Call) -> Out {
    with(c, |r, s| r.field_selector = s.to_string())
}

fn label_selector(c: &Call) -> Out {
    with(c, |r, s| r.label_selector = s.to_string())
}

fn request_resource(c: &Call) -> Out {
    let a = this::<Authorizer>(c)?;
    let Some(target) = &a.request else {
        return Some(Err(fail("no such attribute: authorizer.requestResource")));
    };
    opaque(ResourceCheck {
        authorizer: a.clone(),
        target: (**target).clone(),
        field_selector: String::new(),
        label_selector: String::new(),
    })
}

fn decided(answer: Answer) -> Out {
    let (allowed, reason) = match answer {
        Answer::Allow(r) => (true, r),
        Answer::Deny(r) | Answer::NoOpinion(r) => (false, r),
    };
    opaque(Decision {
        allowed,
        reason,
        error: String::new(),
    })
}

fn check(c: &Call) -> Out {
    let verb = string_arg(c, 0)?;
    if let Some(p) = this::<PathCheck>(c) {
        let attrs = Attributes {
            user: &p.authorizer.user,
            verb,
            resource: None,
            path: &p.path,
            selected_name: None,
            selectors: Default::default(),
        };
        return decided(p.authorizer.chain.decide_now(&attrs));
    }
    let r = this::<ResourceCheck>(c)?;
    let t = &r.target;
    let rr = ResourceRequest {
        // The verb authorizers read is `Attributes::verb`; this one is not consulted.
        verb: Verb::Get,
        group: t.group.clone(),
        version: "*".into(),
        resource: t.resource.clone(),
        namespace: Some(t.namespace.clone()).filter(|n| !n.is_empty()),
        name: Some(t.name.clone()).filter(|n| !n.is_empty()),
        subresource: Some(t.subresource.clone()).filter(|s| !s.is_empty()),
    };
    let attrs = Attributes {
        user: &r.authorizer.user,
        verb,
        resource: Some(&rr),
        path: "",
        selected_name: None,
        selectors: Default::default(),
    };
    decided(r.authorizer.chain.decide_now(&attrs))
}

fn decision(c: &Call) -> Option<&Decision> {
    this::<Decision>(c)
}

fn allowed(c: &Call) -> Out {
    Some(Ok(CelValue::Bool(decision(c)?.allowed)))
}

fn reason(c: &Call) -> Out {
    Some(Ok(CelValue::String(Arc::new(decision(c)?.reason.clone()))))
}

fn errored(c: &Call) -> Out {
    Some(Ok(CelValue::Bool(!decision(c)?.error.is_empty())))
}

fn error(c: &Call) -> Out {
    Some(Ok(CelValue::String(Arc::new(decision(c)?.error.clone()))))
}

/// `authorizer.requestResource` as a member call the library answers.
pub(super) fn rewrite_request_resource(e: &mut IdedExpr) {
    if let Expr::Select(s) = &e.expr
        && !s.test
        && s.field == "requestResource"
        && matches!(&s.operand.expr, Expr::Ident(n) if n == "authorizer")
    {
        e.expr = Expr::Call(CallExpr {
            func_name: REQUEST_RESOURCE.to_string(),
            target: Some(s.operand.clone()),
            args: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Activation, compile};
    use super::*;

    /// Allows `get` of pods in namespace `ns` to alice (and to the `robot` service account),
    /// and nothing else.
    struct OnlyAlice;

    impl crate::authz::Authorizer for OnlyAlice {
        fn authorize(&self, attrs: &Attributes<'_>) -> Answer {
            let pods_in_ns = attrs
                .resource
                .is_some_and(|r| r.resource == "pods" && r.namespace.as_deref() == Some("ns"));
            let who = ["alice", "system:serviceaccount:ns:robot"];
            if who.contains(&attrs.user.name.as_str()) && attrs.verb == "get" && pods_in_ns {
                Answer::Allow(String::new())
            } else {
                Answer::NoOpinion(format!("{} may not", attrs.user.name))
            }
        }
    }

    fn eval(user: &str, src: &str) -> Result<CelValue, String> {
        let chain = Arc::new(Chain::new(vec![Box::new(OnlyAlice)]));
        let user = UserInfo {
            name: user.into(),
            ..UserInfo::default()
        };
        let request = RequestResource {
            resource: "pods".into(),
            namespace: "ns".into(),
            name: "p".into(),
            ..RequestResource::default()
        };
        let mut a = Activation::default();
        a.bind_value(
            "authorizer",
            super::Authorizer::new(chain, user, Some(request)).value(),
        );
        compile(src, &["authorizer"])?.eval(&a)
    }

    #[test]
    fn checks_ask_the_chain_for_the_user() {
        let check = "authorizer.group('').resource('pods').namespace('ns').check('get')";
        assert_eq!(
            eval("alice", &format!("{check}.allowed()")),
            Ok(CelValue::Bool(true))
        );
        assert_eq!(
            eval("bob", &format!("{check}.allowed()")),
            Ok(CelValue::Bool(false))
        );
        assert_eq!(
            eval("bob", &format!("{check}.reason()")),
            Ok(CelValue::String(Arc::new("bob may not".into())))
        );
        assert_eq!(
            eval(
                "bob",
                &format!("{check}.errored() || {check}.error() != ''")
            ),
            Ok(CelValue::Bool(false))
        );
        // The request's own resource, and another namespace.
        assert_eq!(
            eval("alice", "authorizer.requestResource.check('get').allowed()"),
            Ok(CelValue::Bool(true))
        );
        assert_eq!(
            eval(
                "alice",
                "authorizer.requestResource.namespace('other').check('get').allowed()"
            ),
            Ok(CelValue::Bool(false))
        );
        // A service account's view.
        assert_eq!(
            eval(
                "bob",
                "authorizer.serviceAccount('ns', 'robot').group('').resource('pods').namespace('ns').check('get').allowed()"
            ),
            Ok(CelValue::Bool(true))
        );
        assert_eq!(
            eval(
                "alice",
                "authorizer.path('/healthz').check('get').allowed()"
            ),
            Ok(CelValue::Bool(false))
        );
    }

    #[test]
    fn bad_arguments_are_upstreams_errors() {
        let err = |src: &str| eval("alice", src).unwrap_err();
        assert_eq!(err("authorizer.path(' ')"), "path must not be empty");
        assert_eq!(
            err("authorizer.group('').resource('')"),
            "resource must not be empty"
        );
        assert_eq!(
            err("authorizer.serviceAccount('Not Valid', 'x')"),
            "Invalid service account namespace"
        );
        assert_eq!(
            err("authorizer.serviceAccount('ns', 'x_y')"),
            "Invalid service account name"
        );
    }
}
