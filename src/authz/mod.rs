//! Authorization: the stage after authentication and flow control. A chain of authorizers
//! (upstream's `--authorization-mode` or `--authorization-config`, in order) decides whether
//! the request's user may do the request's verb on its resource or path; the first that
//! allows or denies decides, and a request no authorizer allows is a 403 with upstream's
//! message (a 500 when an authorizer failed: a webhook that could not be asked).

pub mod aggregate;
pub mod bootstrap_policy;
pub mod config;
pub mod escalation;
pub mod metrics;
pub mod node;
pub mod rbac;
pub mod review;
pub mod webhook;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::api::request::{ResourceRequest, Target};
use crate::api::status::Status;
use crate::authn::UserInfo;

/// The authorization flags, as kube-apiserver's.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(id = "authorization-flags")]
#[command(next_help_heading = "Authorization flags")]
pub struct Flags {
    /// Ordered list of plug-ins to do authorization on secure port. Comma-delimited list of:
    /// AlwaysAllow,AlwaysDeny,Webhook,RBAC,Node. kapi's default is Node,RBAC (upstream's is
    /// AlwaysAllow, which makes every authenticated user a cluster admin: kapi chooses the
    /// secure setting of every real control plane). ABAC is refused at start.
    #[arg(long, value_delimiter = ',')]
    pub authorization_mode: Vec<String>,
    /// File with Authorization Configuration to configure the authorizer chain. Requires
    /// feature gate StructuredAuthorizationConfiguration. This flag is mutually exclusive
    /// with the other --authorization-mode and --authorization-webhook-* flags. The file is
    /// re-read when it changes.
    #[arg(long)]
    pub authorization_config: Option<PathBuf>,
    /// File with authorization policy in json line by line format, used with
    /// --authorization-mode=ABAC (not supported by kapi: refused at start).
    #[arg(long)]
    pub authorization_policy_file: Option<PathBuf>,
    /// File with webhook configuration in kubeconfig format, used with
    /// --authorization-mode=Webhook. The API server will query the remote service to
    /// determine access on the API server's secure port.
    #[arg(long)]
    pub authorization_webhook_config_file: Option<PathBuf>,
    /// The API version of the authorization.k8s.io SubjectAccessReview to send to and expect
    /// from the webhook (default "v1beta1").
    #[arg(long)]
    pub authorization_webhook_version: Option<String>,
    /// The duration to cache 'authorized' responses from the webhook authorizer (default 5m0s).
    #[arg(long)]
    pub authorization_webhook_cache_authorized_ttl: Option<String>,
    /// The duration to cache 'unauthorized' responses from the webhook authorizer (default 30s).
    #[arg(long)]
    pub authorization_webhook_cache_unauthorized_ttl: Option<String>,
}

/// kapi's `--authorization-mode` when neither it nor `--authorization-config` is given.
const DEFAULT_MODES: &[&str] = &["Node", "RBAC"];

impl Flags {
    /// Whether a flag `--authorization-config` excludes was given (upstream's
    /// `AreLegacyFlagsSet`).
    fn legacy_flags_set(&self) -> bool {
        !self.authorization_mode.is_empty()
            || self.authorization_webhook_config_file.is_some()
            || self.authorization_webhook_version.is_some()
            || self.authorization_webhook_cache_authorized_ttl.is_some()
            || self.authorization_webhook_cache_unauthorized_ttl.is_some()
    }

    /// The configured authorizers, in order, with the configuration file's bytes when they
    /// come from `--authorization-config`; an error with upstream's message for what upstream
    /// refuses (or kapi cannot honour).
    pub fn authorizers(&self) -> Result<(Vec<config::Named>, Option<Vec<u8>>), String> {
        if let Some(f) = &self.authorization_config {
            if self.legacy_flags_set() {
                return Err("--authorization-config can not be specified when --authorization-mode or --authorization-webhook-* flags are defined".into());
            }
            let (authorizers, data) = config::load(f)?;
            return Ok((authorizers, Some(data)));
        }
        let modes: Vec<String> = if self.authorization_mode.is_empty() {
            DEFAULT_MODES.iter().map(|m| m.to_string()).collect()
        } else {
            self.authorization_mode
                .iter()
                .map(|m| m.trim().to_string())
                .collect()
        };
        for (i, m) in modes.iter().enumerate() {
            if modes[..i].contains(m) {
                let quoted: Vec<String> = modes.iter().map(|m| format!("{m:?}")).collect();
                return Err(format!(
                    "authorization-mode [{}] has mode specified more than once",
                    quoted.join(" ")
                ));
            }
        }
        if self.authorization_policy_file.is_some() && !modes.iter().any(|m| m == "ABAC") {
            return Err("cannot specify --authorization-policy-file without mode ABAC".into());
        }
        if self.authorization_webhook_config_file.is_some() && !modes.iter().any(|m| m == "Webhook")
        {
            return Err(
                "cannot specify --authorization-webhook-config-file without mode Webhook".into(),
            );
        }
        let authorizers = config::from_modes(
            &modes,
            self.authorization_webhook_config_file.as_deref(),
            self.authorization_webhook_version
                .as_deref()
                .unwrap_or("v1beta1"),
            self.authorization_webhook_cache_authorized_ttl
                .as_deref()
                .unwrap_or("5m0s"),
            self.authorization_webhook_cache_unauthorized_ttl
                .as_deref()
                .unwrap_or("30s"),
        )?;
        Ok((authorizers, None))
    }
}

/// How long start-up waits for the watch cache to hold the bootstrap policy it just wrote.
const CACHE_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(60);

/// How often `--authorization-config` is read again to see whether it changed (upstream
/// watches the file and re-reads it every minute; reading a small file this often costs
/// nothing, and a change is in force soon).
pub const RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// The authorizer chain of `flags`, ready before the server serves: the bootstrap policy
/// created and reconciled in the store, the RBAC index loaded from the cache and followed,
/// ClusterRole aggregation running; `--authorization-config` followed for changes.
pub fn start(
    flags: &Flags,
    store: &crate::storage::StoreClient,
    cache: &Arc<kapi_cache::Cache>,
    prefix: &str,
) -> Result<Arc<Chain>, String> {
    let (authorizers, config_data) = flags.authorizers()?;
    metrics::init();
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
    let required = config::non_webhook_types(&authorizers);
    let chain = Arc::new(Chain::configured(authorizers, Some(rbac)));
    if let (Some(path), Some(data)) = (&flags.authorization_config, config_data) {
        let (chain, path) = (chain.clone(), path.clone());
        std::thread::Builder::new()
            .name("kapi-authz-reload".into())
            .spawn(move || follow(&chain, &path, data, required))
            .map_err(|e| format!("starting the authorization configuration reload: {e}"))?;
    }
    Ok(chain)
}

/// Follows `--authorization-config`: a changed, valid configuration (keeping the `required`
/// types other than Webhook) replaces the chain, an invalid one is logged and the old chain
/// kept (as upstream's reload).
fn follow(chain: &Chain, path: &std::path::Path, loaded: Vec<u8>, required: Vec<&str>) {
    crate::reload::follow(
        path,
        loaded,
        RELOAD_INTERVAL,
        "authorization",
        |data| config::parse(data, &required).map(|authorizers| chain.replace(authorizers)),
        metrics::reloaded,
    );
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
    /// A list's, watch's or deletecollection's selectors, for authorizers that look at them
    /// (the webhook's review carries them).
    pub selectors: Selectors<'a>,
}

/// The raw `fieldSelector` and `labelSelector` of a request (upstream's request info keeps
/// them for list, watch and deletecollection).
#[derive(Debug, Clone, Copy, Default)]
pub struct Selectors<'a> {
    pub field: Option<&'a str>,
    pub label: Option<&'a str>,
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
                selectors: Selectors::default(),
            },
            _ => Attributes {
                user,
                verb: non_resource_verb(method),
                resource: None,
                path,
                selected_name: None,
                selectors: Selectors::default(),
            },
        }
    }

    /// The name a list or watch selects with `fieldSelector` (`metadata.name=<name>`), and
    /// the selectors of a list, watch or deletecollection, as upstream's request info reads
    /// them.
    pub fn with_query(mut self, query: &'a crate::api::request::Query) -> Attributes<'a> {
        let listing = matches!(self.verb, "list" | "watch");
        if listing && self.resource.is_some_and(|rr| rr.name.is_none()) {
            self.selected_name = query.get("fieldSelector").and_then(selected_name);
        }
        if matches!(self.verb, "list" | "watch" | "deletecollection") && self.resource.is_some() {
            self.selectors = Selectors {
                field: query.get("fieldSelector").filter(|s| !s.is_empty()),
                label: query.get("labelSelector").filter(|s| !s.is_empty()),
            };
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

/// One link of the chain: an authorizer deciding from memory, or a webhook (awaited).
enum Link {
    Local(Box<dyn Authorizer>),
    Webhook(Box<webhook::Webhook>),
}

/// A configured authorizer with the type and name its decisions are counted under (none for
/// the privileged group, which upstream does not count either).
struct Entry {
    /// Its `apiserver_authorization_decisions_total` counters (allowed, denied), resolved
    /// once; none for the privileged group.
    counters: Option<(prometheus::IntCounter, prometheus::IntCounter)>,
    link: Link,
}

/// The ordered authorizers. The list is swapped whole when `--authorization-config` changes;
/// a request decides on the list it loaded.
pub struct Chain {
    entries: ArcSwap<Vec<Entry>>,
    /// The RBAC index, when RBAC is a mode (escalation checks read it).
    rbac: Option<Arc<rbac::Rbac>>,
}

/// What the chain decided, and the errors of authorizers that could not decide (upstream's
/// aggregate error: a request nothing allowed is then a 500, not a 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub error: Option<String>,
}

impl Chain {
    pub fn new(authorizers: Vec<Box<dyn Authorizer>>) -> Chain {
        let entries = authorizers
            .into_iter()
            .map(|a| Entry {
                counters: None,
                link: Link::Local(a),
            })
            .collect();
        Chain {
            entries: ArcSwap::from_pointee(entries),
            rbac: None,
        }
    }

    /// The chain of `authorizers` after upstream's privileged-group authorizer.
    pub fn configured(authorizers: Vec<config::Named>, rbac: Option<Arc<rbac::Rbac>>) -> Chain {
        let chain = Chain {
            entries: ArcSwap::from_pointee(Vec::new()),
            rbac,
        };
        chain.replace(authorizers);
        chain
    }

    /// Puts `authorizers` in force (at start, and when `--authorization-config` changes).
    pub fn replace(&self, authorizers: Vec<config::Named>) {
        let mut entries = vec![Entry {
            counters: None,
            link: Link::Local(Box::new(PrivilegedGroup)),
        }];
        for named in authorizers {
            let kind = named.type_name();
            let link = match named.authorizer {
                config::Configured::AlwaysAllow => Link::Local(Box::new(AlwaysAllow)),
                config::Configured::AlwaysDeny => Link::Local(Box::new(AlwaysDeny)),
                config::Configured::Node => {
                    Link::Local(Box::new(node::NodeAuthorizer::new(self.rbac.clone())))
                }
                config::Configured::Rbac => match &self.rbac {
                    Some(r) => Link::Local(Box::new(rbac::RbacAuthorizer(r.clone()))),
                    None => continue,
                },
                config::Configured::Webhook(settings) => {
                    Link::Webhook(Box::new(webhook::Webhook::new(*settings)))
                }
            };
            let counter = |decision: &str| {
                metrics::DECISIONS.with_label_values(&[kind, named.name.as_str(), decision])
            };
            entries.push(Entry {
                counters: Some((counter("allowed"), counter("denied"))),
                link,
            });
        }
        self.entries.store(Arc::new(entries));
    }

    pub fn rbac(&self) -> Option<&Arc<rbac::Rbac>> {
        self.rbac.as_ref()
    }

    /// Upstream's union authorizer: the first Allow or Deny decides; otherwise no opinion,
    /// with every reason given, one a line. Errors of authorizers that could not decide are
    /// kept beside the decision.
    pub async fn decide(&self, attrs: &Attributes<'_>) -> Verdict {
        // A guard, not a clone: no shared reference count is written per request.
        let entries = self.entries.load();
        let mut reasons: Vec<String> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        for entry in entries.iter() {
            let (decision, error) = match &entry.link {
                Link::Local(a) => (a.authorize(attrs), None),
                Link::Webhook(w) => w.authorize(attrs).await,
            };
            errors.extend(error);
            if let Some((allowed, denied)) = &entry.counters {
                match &decision {
                    Decision::Allow(_) => allowed.inc(),
                    Decision::Deny(_) => denied.inc(),
                    Decision::NoOpinion(_) => {}
                }
            }
            match decision {
                Decision::NoOpinion(why) => {
                    if !why.is_empty() {
                        reasons.push(why);
                    }
                }
                decided => {
                    return Verdict {
                        decision: decided,
                        error: aggregate(errors),
                    };
                }
            }
        }
        Verdict {
            decision: Decision::NoOpinion(reasons.join("\n")),
            error: aggregate(errors),
        }
    }

    /// The union decision without waiting: what CEL's `authorizer` asks while an expression
    /// runs (evaluation is synchronous). Authorizers deciding from memory answer as in
    /// `decide`; a webhook authorizer, which would need a call out, has no opinion here.
    pub fn decide_now(&self, attrs: &Attributes<'_>) -> Decision {
        let entries = self.entries.load();
        let mut reasons: Vec<String> = Vec::new();
        for entry in entries.iter() {
            let Link::Local(a) = &entry.link else {
                continue;
            };
            match a.authorize(attrs) {
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
    pub async fn allows(
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
            selectors: Selectors::default(),
        };
        matches!(self.decide(&attrs).await.decision, Decision::Allow(_))
    }

    /// Ok when allowed; else upstream's 403 `Status` (an authorizer's error included).
    pub async fn authorize(&self, attrs: &Attributes<'_>) -> Result<(), Status> {
        match self.decide(attrs).await.decision {
            Decision::Allow(_) => Ok(()),
            Decision::Deny(why) | Decision::NoOpinion(why) => Err(forbidden(attrs, &why)),
        }
    }

    /// Every authorizer's rules for `user` in `namespace` (upstream's union `RulesFor`).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> RuleSet {
        let mut out = RuleSet::default();
        for entry in self.entries.load().iter() {
            let r = match &entry.link {
                Link::Local(a) => a.rules_for(user, namespace),
                Link::Webhook(_) => RuleSet {
                    incomplete: true,
                    errors: vec!["webhook authorizer does not support user rule resolution".into()],
                    ..RuleSet::default()
                },
            };
            out.resource.extend(r.resource);
            out.non_resource.extend(r.non_resource);
            out.incomplete |= r.incomplete;
            out.errors.extend(r.errors);
        }
        out
    }
}

/// Upstream's aggregate of errors: none, the one, or `[a, b]`.
fn aggregate(mut errors: Vec<String>) -> Option<String> {
    match errors.len() {
        0 => None,
        1 => errors.pop(),
        _ => Some(format!("[{}]", errors.join(", "))),
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
