//! The webhook authorizer (upstream's `plugin/pkg/authorizer/webhook`): each decision not in
//! its cache is a SubjectAccessReview (`authorization.k8s.io/v1` or `v1beta1`) POSTed to the
//! server a kubeconfig names. Its answer allows, denies (which stops the chain) or has no
//! opinion (the next authorizer decides). A call that fails is retried with upstream's
//! back-off when the failure is transient, then answered by the failure policy (no opinion or
//! deny) with the error, which makes a request nothing allows a 500, as upstream's.
//!
//! The HTTP call runs on the webhook caller thread (`admission::webhook::client`); the
//! request waits for it asynchronously, never blocking its core. Answers are cached by the
//! review's spec, allowed ones for `authorizedTTL`, the others for `unauthorizedTTL`, in a
//! bounded cache. `matchConditions` (CEL over `request`, the review's spec) decide whether the
//! webhook is asked at all.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::metrics;
use super::{Attributes, Decision};
use crate::admission::webhook::client::{self, AUTH_WEBHOOK_BACKOFF, Call};
use crate::kubeconfig::Kubeconfig;

/// Answers kept (upstream's LRU expiring cache holds 8192).
const CACHE_ENTRIES: usize = 8192;

/// Requests whose client-controlled attributes are this long or longer are not cached
/// (upstream's `maxControlledAttrCacheSize`: a huge key may be an attempt to fill memory).
const MAX_CACHED_ATTRIBUTE_BYTES: usize = 10_000;

/// The SubjectAccessReview version sent and expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V1beta1,
}

impl Version {
    fn api_version(self) -> &'static str {
        match self {
            Version::V1 => "authorization.k8s.io/v1",
            Version::V1beta1 => "authorization.k8s.io/v1beta1",
        }
    }
}

/// What a failed call (or match condition) decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    NoOpinion,
    Deny,
}

/// One configured webhook, as `--authorization-config` (or the legacy flags) describe it.
pub struct Settings {
    pub name: String,
    pub connection: Kubeconfig,
    pub version: Version,
    pub timeout: Duration,
    /// How long an allowed answer is kept; `None`: not cached.
    pub authorized_ttl: Option<Duration>,
    /// How long any other answer is kept; `None`: not cached.
    pub unauthorized_ttl: Option<Duration>,
    pub failure_policy: FailurePolicy,
    /// Compiled `matchConditions`, each with its expression (named in errors).
    pub conditions: Vec<(String, crate::cel::Compiled)>,
}

pub struct Webhook {
    settings: Settings,
    cache: Mutex<Answers>,
}

/// A review's status, as kept in the cache.
#[derive(Debug, Clone)]
struct Answer {
    allowed: bool,
    denied: bool,
    reason: String,
}

/// The cache of answers by review spec: a map with expiry times, evicted oldest-first when
/// full (`order` keeps insertion order; it may hold keys already gone from `entries`, and is
/// compacted when it grows past twice the capacity).
#[derive(Default)]
struct Answers {
    entries: HashMap<String, (Answer, Instant)>,
    order: VecDeque<String>,
}

impl Answers {
    fn get(&mut self, key: &str, now: Instant) -> Option<Answer> {
        match self.entries.get(key) {
            Some((answer, expiry)) if *expiry > now => Some(answer.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&mut self, key: String, answer: Answer, expiry: Instant) {
        if let Some(slot) = self.entries.get_mut(&key) {
            *slot = (answer, expiry);
            return;
        }
        while self.entries.len() >= CACHE_ENTRIES {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => {
                    self.entries.clear();
                }
            }
        }
        if self.order.len() >= 2 * CACHE_ENTRIES {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
        self.order.push_back(key.clone());
        self.entries.insert(key, (answer, expiry));
    }
}

/// The decision and, when the webhook could not be asked, why.
pub type Outcome = (Decision, Option<String>);

impl Webhook {
    pub fn new(settings: Settings) -> Webhook {
        Webhook {
            settings,
            cache: Mutex::new(Answers::default()),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    fn on_error(&self, why: String) -> Outcome {
        let decision = match self.settings.failure_policy {
            FailurePolicy::NoOpinion => Decision::NoOpinion(String::new()),
            FailurePolicy::Deny => Decision::Deny(String::new()),
        };
        (decision, Some(why))
    }

    pub async fn authorize(&self, attrs: &Attributes<'_>) -> Outcome {
        let name = self.settings.name.as_str();
        if !self.settings.conditions.is_empty() {
            match self.matches(attrs) {
                Ok(true) => {}
                Ok(false) => {
                    metrics::MATCH_EXCLUSIONS
                        .with_label_values(&["Webhook", name])
                        .inc();
                    return (Decision::NoOpinion(String::new()), None);
                }
                Err(why) => {
                    metrics::MATCH_ERRORS
                        .with_label_values(&["Webhook", name])
                        .inc();
                    return self.on_error(why);
                }
            }
        }
        let spec = spec(attrs);
        let key = spec.to_string();
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|mut c| c.get(&key, Instant::now()));
        let answer = match cached {
            Some(a) => a,
            None => match self.ask(spec).await {
                Ok(a) => {
                    let ttl = if a.allowed {
                        self.settings.authorized_ttl
                    } else {
                        self.settings.unauthorized_ttl
                    };
                    if let Some(ttl) = ttl.filter(|_| cacheable(attrs))
                        && let Ok(mut c) = self.cache.lock()
                    {
                        c.insert(key, a.clone(), Instant::now() + ttl);
                    }
                    a
                }
                Err(why) => {
                    eprintln!(
                        "kapi: authorization webhook {name:?}: Failed to make webhook authorizer request: {why}"
                    );
                    let result = if why.contains("timed out") {
                        "timeout"
                    } else {
                        "error"
                    };
                    if self.settings.failure_policy == FailurePolicy::NoOpinion {
                        metrics::WEBHOOK_FAIL_OPEN
                            .with_label_values(&[name, result])
                            .inc();
                    }
                    return self.on_error(why);
                }
            },
        };
        match (answer.allowed, answer.denied) {
            (true, true) => (
                Decision::Deny(answer.reason),
                Some("webhook subject access review returned both allow and deny response".into()),
            ),
            (_, true) => (Decision::Deny(answer.reason), None),
            (true, _) => (Decision::Allow(answer.reason), None),
            _ => (Decision::NoOpinion(answer.reason), None),
        }
    }

    /// POSTs the review (retried as upstream's) and reads its status.
    async fn ask(&self, spec: Value) -> Result<Answer, String> {
        let s = &self.settings;
        let body = review(s.version, spec);
        let call = Call {
            url: s.connection.server.clone(),
            ca_bundle: s.connection.certificate_authority.clone(),
            identity: s.connection.identity(),
            token: s.connection.token.clone(),
            body: serde_json::to_vec(&body).map_err(|e| e.to_string())?,
            timeout: s.timeout,
            backoff: Some(AUTH_WEBHOOK_BACKOFF),
            ..Call::default()
        };
        let started = Instant::now();
        let result = client::post(call)
            .await
            .and_then(|bytes| read_answer(&bytes));
        let outcome = match &result {
            Ok(_) => "success",
            Err(why) if why.contains("timed out") => "timeout",
            Err(_) => "error",
        };
        let labels = [s.name.as_str(), outcome];
        metrics::WEBHOOK_EVALUATIONS
            .with_label_values(&labels)
            .inc();
        metrics::WEBHOOK_DURATION
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// Upstream's CEL matcher: false as soon as one condition is false; an error when none is
    /// false and one could not be evaluated.
    fn matches(&self, attrs: &Attributes<'_>) -> Result<bool, String> {
        let mut activation = crate::cel::Activation::default();
        activation.bind("request", Some(&cel_request(attrs)));
        let mut errors = Vec::new();
        for (expression, program) in &self.settings.conditions {
            match program.eval(&activation) {
                Ok(::cel::Value::Bool(true)) => {}
                Ok(::cel::Value::Bool(false)) => return Ok(false),
                Ok(other) => errors.push(format!(
                    "cel evaluation error: expression '{expression}' eval result type should be bool but got {}",
                    crate::cel::type_name(&other)
                )),
                Err(e) => errors.push(format!(
                    "cel evaluation error: expression '{expression}' resulted in error: {e}"
                )),
            }
        }
        match errors.len() {
            0 => Ok(true),
            1 => Err(errors.remove(0)),
            _ => Err(format!("[{}]", errors.join(", "))),
        }
    }
}

/// Upstream's `shouldCache`: the client-controlled attributes are short enough to key on.
fn cacheable(attrs: &Attributes<'_>) -> bool {
    let resource = attrs.resource.map_or(0, |rr| {
        rr.group.len()
            + rr.version.len()
            + rr.resource.len()
            + rr.subresource.as_deref().map_or(0, str::len)
    });
    let selectors =
        attrs.selectors.field.map_or(0, str::len) + attrs.selectors.label.map_or(0, str::len);
    let size = attrs.namespace().len()
        + attrs.verb.len()
        + resource
        + attrs.name().len()
        + attrs.path.len()
        + selectors;
    size < MAX_CACHED_ATTRIBUTE_BYTES
}

/// The review's spec (`authorization.k8s.io/v1` field names), empty fields left out as
/// upstream's encoding leaves them; also the cache key.
pub fn spec(attrs: &Attributes<'_>) -> Value {
    let mut spec = Map::new();
    let put = |m: &mut Map<String, Value>, k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    };
    match attrs.resource {
        Some(rr) => {
            let mut ra = Map::new();
            put(&mut ra, "namespace", attrs.namespace());
            put(&mut ra, "verb", attrs.verb);
            put(&mut ra, "group", &rr.group);
            put(&mut ra, "version", &rr.version);
            put(&mut ra, "resource", &rr.resource);
            put(
                &mut ra,
                "subresource",
                rr.subresource.as_deref().unwrap_or(""),
            );
            put(&mut ra, "name", attrs.name());
            for (key, requirements) in selector_requirements(attrs) {
                ra.insert(key.into(), json!({"requirements": requirements}));
            }
            spec.insert("resourceAttributes".into(), Value::Object(ra));
        }
        None => {
            let mut nra = Map::new();
            put(&mut nra, "path", attrs.path);
            put(&mut nra, "verb", attrs.verb);
            spec.insert("nonResourceAttributes".into(), Value::Object(nra));
        }
    }
    let user = attrs.user;
    put(&mut spec, "user", &user.name);
    if !user.groups.is_empty() {
        spec.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        spec.insert("extra".into(), json!(user.extra));
    }
    put(&mut spec, "uid", &user.uid);
    Value::Object(spec)
}

/// The request's selectors as the review's `fieldSelector` and `labelSelector`
/// requirements (upstream's webhook leaves out one that does not parse or is empty).
fn selector_requirements(attrs: &Attributes<'_>) -> Vec<(&'static str, Vec<Value>)> {
    use crate::api::selector::{FieldSelector, LabelSelector};
    let mut out = Vec::new();
    let field = attrs
        .selectors
        .field
        .and_then(|s| FieldSelector::parse(s).ok());
    if let Some(reqs) = field.map(|f| f.requirements()).filter(|r| !r.is_empty()) {
        out.push(("fieldSelector", reqs));
    }
    let label = attrs
        .selectors
        .label
        .and_then(|s| LabelSelector::parse(s).ok());
    if let Some(reqs) = label.map(|l| l.requirements()).filter(|r| !r.is_empty()) {
        out.push(("labelSelector", reqs));
    }
    out
}

/// The `request` match conditions see: every field of the spec, empty ones too (upstream
/// builds it so, so that `request.resourceAttributes.namespace == ''` needs no `has()`).
fn cel_request(attrs: &Attributes<'_>) -> Value {
    let user = attrs.user;
    let mut request = json!({
        "user": user.name,
        "groups": user.groups,
        "uid": user.uid,
        "extra": user.extra,
    });
    match attrs.resource {
        Some(rr) => {
            request["resourceAttributes"] = json!({
                "namespace": attrs.namespace(),
                "verb": attrs.verb,
                "group": rr.group,
                "version": rr.version,
                "resource": rr.resource,
                "subresource": rr.subresource.as_deref().unwrap_or(""),
                "name": attrs.name(),
            });
            for (key, requirements) in selector_requirements(attrs) {
                request["resourceAttributes"][key] = json!({"requirements": requirements});
            }
        }
        None => {
            request["nonResourceAttributes"] = json!({"verb": attrs.verb, "path": attrs.path});
        }
    }
    request
}

/// The SubjectAccessReview POSTed for `spec` (v1beta1 names the groups `group`).
fn review(version: Version, mut spec: Value) -> Value {
    if version == Version::V1beta1
        && let Some(m) = spec.as_object_mut()
        && let Some(groups) = m.remove("groups")
    {
        m.insert("group".into(), groups);
    }
    json!({
        "kind": "SubjectAccessReview",
        "apiVersion": version.api_version(),
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": {"allowed": false},
    })
}

/// The status of the webhook's answer.
fn read_answer(bytes: &[u8]) -> Result<Answer, String> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("the answer is not a SubjectAccessReview: {e}"))?;
    let status = &v["status"];
    if !status.is_object() && !status.is_null() {
        return Err("the answer's status is not an object".into());
    }
    Ok(Answer {
        allowed: status["allowed"].as_bool().unwrap_or(false),
        denied: status["denied"].as_bool().unwrap_or(false),
        reason: status["reason"].as_str().unwrap_or("").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::{Query, parse};
    use crate::authn::UserInfo;

    #[test]
    fn the_review_carries_the_attributes_as_upstreams_does() {
        let mut user = UserInfo {
            name: "jane".into(),
            uid: "u-1".into(),
            groups: vec!["devs".into()],
            ..UserInfo::default()
        };
        user.extra.insert("scopes".into(), vec!["a".into()]);
        let method = http::Method::GET;
        let path = "/apis/apps/v1/namespaces/ns/deployments/d/scale";
        let target = parse(&method, path, &Query::default());
        let attrs = Attributes::new(&user, &method, path, target.as_ref());
        let s = spec(&attrs);
        assert_eq!(
            s,
            json!({"resourceAttributes": {"namespace": "ns", "verb": "get", "group": "apps",
                "version": "v1", "resource": "deployments", "subresource": "scale", "name": "d"},
                "user": "jane", "groups": ["devs"], "extra": {"scopes": ["a"]}, "uid": "u-1"})
        );
        let beta = review(Version::V1beta1, s.clone());
        assert_eq!(beta["spec"]["group"], json!(["devs"]));
        assert!(beta["spec"].get("groups").is_none());
        assert_eq!(beta["apiVersion"], "authorization.k8s.io/v1beta1");
        let path = "/healthz";
        let attrs = Attributes::new(&user, &method, path, None);
        assert_eq!(
            spec(&attrs)["nonResourceAttributes"],
            json!({"path": "/healthz", "verb": "get"})
        );
        // A list's selectors are the review's requirements.
        let path = "/api/v1/namespaces/ns/pods";
        let query = Query::parse(Some(
            "labelSelector=tier%3Dweb%2Capp+in+(a%2Cb)%2C!old&fieldSelector=spec.nodeName%3Dn1",
        ));
        let target = parse(&method, path, &query);
        let attrs = Attributes::new(&user, &method, path, target.as_ref()).with_query(&query);
        let ra = &spec(&attrs)["resourceAttributes"];
        assert_eq!(
            ra["fieldSelector"],
            json!({"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["n1"]}]})
        );
        assert_eq!(
            ra["labelSelector"],
            json!({"requirements": [
                {"key": "app", "operator": "In", "values": ["a", "b"]},
                {"key": "old", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "In", "values": ["web"]}]})
        );
        let path = "/healthz";
        let attrs = Attributes::new(&user, &method, path, None);
        // Match conditions see every field, empty ones too.
        assert_eq!(cel_request(&attrs)["nonResourceAttributes"]["verb"], "get");
    }

    #[test]
    fn the_cache_expires_and_stays_bounded() {
        let mut c = Answers::default();
        let now = Instant::now();
        let a = Answer {
            allowed: true,
            denied: false,
            reason: String::new(),
        };
        c.insert("k".into(), a.clone(), now + Duration::from_secs(5));
        assert!(c.get("k", now).is_some());
        assert!(c.get("k", now + Duration::from_secs(6)).is_none());
        assert!(c.entries.is_empty());
        for i in 0..3 * CACHE_ENTRIES {
            c.insert(i.to_string(), a.clone(), now + Duration::from_secs(5));
            assert!(c.entries.len() <= CACHE_ENTRIES);
            assert!(c.order.len() <= 2 * CACHE_ENTRIES);
        }
        // The newest are kept.
        assert!(c.get(&(3 * CACHE_ENTRIES - 1).to_string(), now).is_some());
        assert!(c.get("0", now).is_none());
    }

    #[test]
    fn answers_read_allowed_denied_and_reason() {
        let a =
            read_answer(br#"{"status":{"allowed":false,"denied":true,"reason":"no"}}"#).unwrap();
        assert!(a.denied && !a.allowed && a.reason == "no");
        assert!(read_answer(b"not json").is_err());
    }
}
