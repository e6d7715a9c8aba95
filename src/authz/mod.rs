//! Authorization: the stage after authentication and flow control. A chain of authorizers
//! (upstream's `--authorization-mode`, in order) decides whether the request's user may do the
//! request's verb on its resource or path; the first that allows or denies decides, and a
//! request no authorizer allows is a 403 with upstream's message.

pub mod aggregate;
pub mod bootstrap_policy;
pub mod escalation;
pub mod node;
pub mod rbac;
pub mod review;

use std::path::PathBuf;
use std::sync::Arc;

use crate::api::request::{ResourceRequest, Target};
use crate::api::status::Status;
use crate::authn::UserInfo;

/// The authorization flags, as kube-apiserver's.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "authorization-flags")]
#[command(next_help_heading = "Authorization flags")]
pub struct Flags {
    /// Ordered list of plug-ins to do authorization on secure port. Comma-delimited list of:
    /// AlwaysAllow,AlwaysDeny,Webhook,RBAC,Node. kapi's default is Node,RBAC (upstream's is
    /// AlwaysAllow, which makes every authenticated user a cluster admin: kapi chooses the
    /// secure setting of every real control plane). Webhook and ABAC are refused at start:
    /// kapi does not have them yet.
    #[arg(long, value_delimiter = ',', default_value = "Node,RBAC")]
    pub authorization_mode: Vec<String>,
    /// File with Authorization Configuration to configure the authorizer chain. Not
    /// supported by kapi yet: refused at start, naming it.
    #[arg(long)]
    pub authorization_config: Option<PathBuf>,
    /// File with authorization policy in json line by line format, used with
    /// --authorization-mode=ABAC (not supported by kapi: refused at start).
    #[arg(long)]
    pub authorization_policy_file: Option<PathBuf>,
    /// File with webhook configuration in kubeconfig format, used with
    /// --authorization-mode=Webhook (not supported by kapi yet: refused at start).
    #[arg(long)]
    pub authorization_webhook_config_file: Option<PathBuf>,
    /// The API version of the authorization.k8s.io SubjectAccessReview to send to and expect
    /// from the webhook.
    #[arg(long, default_value = "v1beta1")]
    pub authorization_webhook_version: String,
    /// The duration to cache 'authorized' responses from the webhook authorizer.
    #[arg(long, default_value = "5m0s")]
    pub authorization_webhook_cache_authorized_ttl: String,
    /// The duration to cache 'unauthorized' responses from the webhook authorizer.
    #[arg(long, default_value = "30s")]
    pub authorization_webhook_cache_unauthorized_ttl: String,
}

impl Default for Flags {
    fn default() -> Flags {
        Flags {
            authorization_mode: vec!["Node".into(), "RBAC".into()],
            authorization_config: None,
            authorization_policy_file: None,
            authorization_webhook_config_file: None,
            authorization_webhook_version: "v1beta1".into(),
            authorization_webhook_cache_authorized_ttl: "5m0s".into(),
            authorization_webhook_cache_unauthorized_ttl: "30s".into(),
        }
    }
}

/// One `--authorization-mode` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    AlwaysDeny,
    Rbac,
    Node,
}

impl Flags {
    /// The modes, in order; an error naming what kapi cannot honour or upstream refuses.
    pub fn modes(&self) -> Result<Vec<Mode>, String> {
        if let Some(f) = &self.authorization_config {
            return Err(format!(
                "--authorization-config={}: structured authorization configuration is not supported by kapi yet; use --authorization-mode",
                f.display()
            ));
        }
        let mut out = Vec::new();
        for m in &self.authorization_mode {
            let mode = match m.trim() {
                "AlwaysAllow" => Mode::AlwaysAllow,
                "AlwaysDeny" => Mode::AlwaysDeny,
                "RBAC" => Mode::Rbac,
                "Node" => Mode::Node,
                "Webhook" => {
                    return Err("--authorization-mode=Webhook: the webhook authorizer is not supported by kapi yet".into());
                }
                "ABAC" => {
                    return Err(
                        "--authorization-mode=ABAC: the ABAC authorizer is not supported by kapi"
                            .into(),
                    );
                }
                other => {
                    return Err(format!(
                        "--authorization-mode: authorization mode {other:?} is not a valid mode (AlwaysAllow, AlwaysDeny, ABAC, Webhook, RBAC, Node)"
                    ));
                }
            };
            if out.contains(&mode) {
                return Err(format!(
                    "--authorization-mode: {m:?} is specified more than once"
                ));
            }
            out.push(mode);
        }
        if out.is_empty() {
            return Err(
                "--authorization-mode: at least one authorization mode must be given".into(),
            );
        }
        if self.authorization_policy_file.is_some() {
            return Err("--authorization-policy-file: only with --authorization-mode=ABAC".into());
        }
        if self.authorization_webhook_config_file.is_some() {
            return Err(
                "--authorization-webhook-config-file: only with --authorization-mode=Webhook"
                    .into(),
            );
        }
        Ok(out)
    }
}

/// How long start-up waits for the watch cache to hold the bootstrap policy it just wrote.
const CACHE_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(60);

/// The authorizer chain of `flags`, ready before the server serves: the bootstrap policy
/// created and reconciled in the store, the RBAC index loaded from the cache and followed,
/// ClusterRole aggregation running.
pub fn start(
    flags: &Flags,
    store: &crate::storage::StoreClient,
    cache: &Arc<kapi_cache::Cache>,
    prefix: &str,
) -> Result<Chain, String> {
    let modes = flags.modes()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let revision = rt.block_on(async {
        bootstrap_policy::ensure(store, prefix).await?;
        store
            .current_revision()
            .await
            .map_err(|e| format!("reading the store's revision: {e}"))
    })?;
    let since = std::time::Instant::now();
    while cache.revision() < revision {
        if since.elapsed() > CACHE_CATCH_UP {
            return Err(format!(
                "the watch cache did not reach revision {revision} within {CACHE_CATCH_UP:?}"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let rbac = rbac::Rbac::new(cache.clone(), prefix);
    rbac.follow(store.clone())
        .map_err(|e| format!("RBAC: {e}"))?;
    Ok(Chain::from_modes(&modes, Some(rbac)))
}

/// What a request asks to do, as upstream's `authorizer.Attributes`.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub user: &'a UserInfo,
    /// The Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection)
    /// for a resource request; the lower-cased HTTP method for a path.
    pub verb: &'a str,
    pub resource: Option<&'a ResourceRequest>,
    /// The request's path (what a non-resource rule matches).
    pub path: &'a str,
    /// The object a list or watch selects by `fieldSelector=metadata.name=<name>`, which
    /// upstream's request info makes the request's name (so `resourceNames` rules and the
    /// Node authorizer allow a kubelet's single-object watch).
    pub selected_name: Option<&'a str>,
    /// A list's or watch's whole `fieldSelector` (the Node authorizer lets a kubelet list and
    /// watch the pods it selects by its own `spec.nodeName`).
    pub field_selector: Option<&'a str>,
}

impl<'a> Attributes<'a> {
    pub fn new(
        user: &'a UserInfo,
        method: &'a http::Method,
        path: &'a str,
        target: Option<&'a Target>,
    ) -> Attributes<'a> {
        match target {
            Some(Target::Resource(rr)) => Attributes {
                user,
                verb: rr.verb.as_str(),
                resource: Some(rr),
                path,
                selected_name: None,
                field_selector: None,
            },
            _ => Attributes {
                user,
                verb: non_resource_verb(method),
                resource: None,
                path,
                selected_name: None,
                field_selector: None,
            },
        }
    }

    /// The name a list or watch selects with `fieldSelector` (`metadata.name=<name>`), as
    /// upstream's request info reads it.
    pub fn with_query(mut self, query: &'a crate::api::request::Query) -> Attributes<'a> {
        let listing = matches!(self.verb, "list" | "watch");
        if listing && self.resource.is_some_and(|rr| rr.name.is_none()) {
            self.selected_name = query.get("fieldSelector").and_then(selected_name);
            self.field_selector = query.get("fieldSelector");
        }
        self
    }

    /// The object's name: the path's, or the one a list or watch selects ("" for none).
    pub fn name(&self) -> &'a str {
        match self.resource.and_then(|rr| rr.name.as_deref()) {
            Some(n) => n,
            None => self.selected_name.unwrap_or(""),
        }
    }

    /// The request's namespace as upstream's request info has it: a namespace object is its
    /// own namespace (`/api/v1/namespaces/x` is in namespace `x`).
    pub fn namespace(&self) -> &'a str {
        match self.resource {
            Some(rr) => match (&rr.namespace, &rr.name) {
                (Some(ns), _) => ns,
                (None, Some(name)) if rr.group.is_empty() && rr.resource == "namespaces" => name,
                _ => "",
            },
            None => "",
        }
    }
}

/// `metadata.name=<name>` (or `==`) among a field selector's terms, when the name is a valid
/// path segment (upstream's `RequiresExactMatch` and `IsValidPathSegmentName`).
fn selected_name(selector: &str) -> Option<&str> {
    selector.split(',').find_map(|term| {
        let name = term
            .trim()
            .strip_prefix("metadata.name")?
            .trim_start()
            .strip_prefix('=')?;
        let name = name.strip_prefix('=').unwrap_or(name).trim();
        let valid = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%']);
        valid.then_some(name)
    })
}

/// A non-resource request's verb: its method, lower-cased, as upstream's RequestInfoFactory.
fn non_resource_verb(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "get",
        http::Method::HEAD => "head",
        http::Method::POST => "post",
        http::Method::PUT => "put",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        http::Method::OPTIONS => "options",
        _ => "unknown",
    }
}

/// One authorizer's answer, with upstream's reason text (may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(String),
    /// Refused, with the reason upstream appends to its message.
    Deny(String),
    /// This authorizer has no rule for the request; the next one decides.
    NoOpinion(String),
}

/// The rules a user has in a namespace, as upstream's `RuleResolver` answers
/// (SelfSubjectRulesReview, escalation checks).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub resource: Vec<rbac::rules::Rule>,
    pub non_resource: Vec<rbac::rules::Rule>,
    /// Some authorizer could not list its rules.
    pub incomplete: bool,
    pub errors: Vec<String>,
}

/// One authorization mode. Shared by every core; decides from memory, never from the store.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision;

    /// The rules this authorizer grants `user` in `namespace`; by default it cannot say.
    fn rules_for(&self, _user: &UserInfo, _namespace: &str) -> RuleSet {
        RuleSet {
            incomplete: true,
            ..RuleSet::default()
        }
    }
}

/// The authorizers; cloning shares them (CEL's `authorizer` variable holds one).
#[derive(Clone)]
pub struct Chain {
    authorizers: Arc<[Box<dyn Authorizer>]>,
    /// The RBAC index, when RBAC is a mode (escalation checks read it).
    rbac: Option<Arc<rbac::Rbac>>,
}

impl Chain {
    pub fn new(authorizers: Vec<Box<dyn Authorizer>>) -> Chain {
        Chain {
            authorizers: authorizers.into(),
            rbac: None,
        }
    }

    /// The chain of `modes` after upstream's privileged-group authorizer.
    pub fn from_modes(modes: &[Mode], rbac: Option<Arc<rbac::Rbac>>) -> Chain {
        let mut authorizers: Vec<Box<dyn Authorizer>> = vec![Box::new(PrivilegedGroup)];
        for m in modes {
            match m {
                Mode::AlwaysAllow => authorizers.push(Box::new(AlwaysAllow)),
                Mode::AlwaysDeny => authorizers.push(Box::new(AlwaysDeny)),
                Mode::Node => authorizers.push(Box::new(node::NodeAuthorizer::new(rbac.clone()))),
                Mode::Rbac => {
                    if let Some(r) = &rbac {
                        authorizers.push(Box::new(rbac::RbacAuthorizer(r.clone())));
                    }
                }
            }
        }
        Chain {
            authorizers: authorizers.into(),
            rbac,
        }
    }

    pub fn rbac(&self) -> Option<&Arc<rbac::Rbac>> {
        self.rbac.as_ref()
    }

    /// Upstream's union authorizer: the first Allow or Deny decides; otherwise no opinion,
    /// with every reason given, one a line.
    pub fn decide(&self, attrs: &Attributes<'_>) -> Decision {
        let mut reasons: Vec<String> = Vec::new();
        for authorizer in self.authorizers.iter() {
            match authorizer.authorize(attrs) {
                Decision::NoOpinion(why) => {
                    if !why.is_empty() {
                        reasons.push(why);
                    }
                }
                decided => return decided,
            }
        }
        Decision::NoOpinion(reasons.join("\n"))
    }

    /// Whether `user` may `verb` (any verb, `approve`, `bind`, ...) the object `name` of
    /// `group`/`resource` in `namespace` ("" for cluster-scoped): the checks the apiserver
    /// makes itself beyond the request's own verb.
    pub fn allows(
        &self,
        user: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> bool {
        let rr = ResourceRequest {
            verb: crate::api::request::Verb::Get,
            group: group.into(),
            version: "*".into(),
            resource: resource.into(),
            namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
            name: Some(name.to_string()),
            subresource: None,
        };
        let attrs = Attributes {
            user,
            verb,
            resource: Some(&rr),
            path: "",
            selected_name: None,
            field_selector: None,
        };
        matches!(self.decide(&attrs), Decision::Allow(_))
    }

    /// Ok when allowed; else upstream's 403 `Status`.
    pub fn authorize(&self, attrs: &Attributes<'_>) -> Result<(), Status> {
        match self.decide(attrs) {
            Decision::Allow(_) => Ok(()),
            Decision::Deny(why) | Decision::NoOpinion(why) => Err(forbidden(attrs, &why)),
        }
    }

    /// Every authorizer's rules for `user` in `namespace` (upstream's union `RulesFor`).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> RuleSet {
        let mut out = RuleSet::default();
        for a in self.authorizers.iter() {
            let r = a.rules_for(user, namespace);
            out.resource.extend(r.resource);
            out.non_resource.extend(r.non_resource);
            out.incomplete |= r.incomplete;
            out.errors.extend(r.errors);
        }
        out
    }
}

/// Upstream's `system:masters` group: allowed everything, whatever the modes
/// (its privileged-group authorizer comes first).
pub struct PrivilegedGroup;

impl Authorizer for PrivilegedGroup {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        if attrs.user.in_group("system:masters") {
            Decision::Allow(String::new())
        } else {
            Decision::NoOpinion(String::new())
        }
    }

    fn rules_for(&self, _user: &UserInfo, _namespace: &str) -> RuleSet {
        RuleSet::default()
    }
}

/// `--authorization-mode=AlwaysAllow`: everything.
pub struct AlwaysAllow;

impl Authorizer for AlwaysAllow {
    fn authorize(&self, _attrs: &Attributes<'_>) -> Decision {
        Decision::Allow(String::new())
    }

    fn rules_for(&self, _user: &UserInfo, _namespace: &str) -> RuleSet {
        let all = |k: &str| vec![k.to_string()];
        RuleSet {
            resource: vec![rbac::rules::Rule {
                verbs: all("*"),
                api_groups: all("*"),
                resources: all("*"),
                ..Default::default()
            }],
            non_resource: vec![rbac::rules::Rule {
                verbs: all("*"),
                non_resource_urls: all("*"),
                ..Default::default()
            }],
            ..RuleSet::default()
        }
    }
}

/// `--authorization-mode=AlwaysDeny`: nothing.
pub struct AlwaysDeny;

impl Authorizer for AlwaysDeny {
    fn authorize(&self, _attrs: &Attributes<'_>) -> Decision {
        Decision::Deny("Everything is forbidden.".into())
    }

    fn rules_for(&self, _user: &UserInfo, _namespace: &str) -> RuleSet {
        RuleSet::default()
    }
}

/// Stored bytes (protobuf with the `k8s\0` envelope) as JSON.
pub(crate) fn decode(value: &[u8]) -> Option<serde_json::Value> {
    let mut out = Vec::new();
    kapi_codec::to_json::envelope_to_json(value, &mut out).ok()?;
    serde_json::from_slice(&out).ok()
}

/// Upstream's 403 for a refused request: `<resource>.<group> "<name>" is forbidden: User
/// "<user>" cannot <verb> resource "<resource>[/<subresource>]" in API group "<group>" <scope>`,
/// or `forbidden: User "<user>" cannot <verb> path "<path>"`; a reason follows after `: `.
pub fn forbidden(attrs: &Attributes<'_>, reason: &str) -> Status {
    let user = &attrs.user.name;
    let mut status = match attrs.resource {
        Some(rr) => {
            let gr = if rr.group.is_empty() {
                rr.resource.clone()
            } else {
                format!("{}.{}", rr.resource, rr.group)
            };
            let named = match attrs.name() {
                "" => gr,
                n => format!("{gr} \"{n}\""),
            };
            let resource = match &rr.subresource {
                Some(sub) => format!("{}/{sub}", rr.resource),
                None => rr.resource.clone(),
            };
            let scope = match attrs.namespace() {
                "" => "at the cluster scope".to_string(),
                ns => format!("in the namespace \"{ns}\""),
            };
            let mut s = Status::new(
                403,
                "Forbidden",
                format!(
                    "{named} is forbidden: User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
                    attrs.verb, rr.group
                ),
            );
            s.kind = Some(rr.resource.clone());
            s.group = Some(rr.group.clone()).filter(|g| !g.is_empty());
            s.name = Some(attrs.name().to_string()).filter(|n| !n.is_empty());
            s
        }
        None => Status::new(
            403,
            "Forbidden",
            format!(
                "forbidden: User \"{user}\" cannot {} path \"{}\"",
                attrs.verb, attrs.path
            ),
        ),
    };
    if !reason.is_empty() {
        status.message = format!("{}: {reason}", status.message);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::{Query, parse};

    #[test]
    fn a_list_selecting_one_name_is_that_names_request() {
        assert_eq!(selected_name("metadata.name=s1"), Some("s1"));
        assert_eq!(selected_name("spec.x=y,metadata.name==s1"), Some("s1"));
        assert_eq!(selected_name("metadata.name!=s1"), None);
        assert_eq!(selected_name("metadata.name=a/b"), None);
        assert_eq!(selected_name("metadata.namespace=x"), None);
        let user = UserInfo::default();
        let method = http::Method::GET;
        let path = "/api/v1/namespaces/ns/secrets";
        let query = Query::parse(Some("fieldSelector=metadata.name%3Ds1&watch=1"));
        let target = parse(&method, path, &query);
        let attrs = Attributes::new(&user, &method, path, target.as_ref()).with_query(&query);
        assert_eq!(
            (attrs.verb, attrs.name(), attrs.namespace()),
            ("watch", "s1", "ns")
        );
        let e = forbidden(&attrs, "");
        assert_eq!(
            e.message,
            r#"secrets "s1" is forbidden: User "" cannot watch resource "secrets" in API group "" in the namespace "ns""#
        );
        // A namespace is its own namespace.
        let path = "/api/v1/namespaces/team";
        let target = parse(&method, path, &Query::default());
        let attrs = Attributes::new(&user, &method, path, target.as_ref());
        assert_eq!(attrs.namespace(), "team");
    }
}
