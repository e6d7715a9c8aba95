//! Resource quantities as admission plugins count them (LimitRanger, ResourceQuota): parsed
//! to milli-units in 128 bits with upstream's canonical text, resource lists, and a pod's
//! effective requests and limits.

use serde_json::Value;

/// A parsed quantity: its milli-value and upstream's canonical text.
#[derive(Clone, Debug)]
pub(super) struct Qty {
    pub milli: i128,
    pub text: String,
}

pub(super) fn qty(v: &Value) -> Option<Qty> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let milli = kapi_codec::goscalar::quantity_milli_value(&s).ok()? as i128;
    let mut out = Vec::new();
    kapi_codec::goscalar::canonical_quantity(&s, &mut out).ok()?;
    Some(Qty {
        milli,
        text: String::from_utf8(out).ok()?,
    })
}

/// A resource list (`requests`, `limits`, `min`, ...) as sorted (name, quantity) pairs.
pub(super) type List = Vec<(String, Qty)>;

/// `v` as a `List`; values that do not parse are left to validation.
pub(super) fn list(v: &Value) -> List {
    let mut out: Vec<(String, Qty)> = v
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| Some((k.clone(), qty(q)?)))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

pub(super) fn get<'a>(l: &'a [(String, Qty)], name: &str) -> Option<&'a Qty> {
    l.iter().find(|(k, _)| k == name).map(|(_, q)| q)
}

pub(super) fn add(into: &mut Vec<(String, Qty)>, from: &[(String, Qty)]) {
    for (k, q) in from {
        match into.iter_mut().find(|(n, _)| n == k) {
            Some((_, have)) => {
                have.milli += q.milli;
                have.text = milli_text(have.milli);
            }
            None => into.push((k.clone(), q.clone())),
        }
    }
}

pub(super) fn max_into(into: &mut Vec<(String, Qty)>, from: &[(String, Qty)]) {
    for (k, q) in from {
        match into.iter_mut().find(|(n, _)| n == k) {
            Some((_, have)) if have.milli >= q.milli => {}
            Some((_, have)) => *have = q.clone(),
            None => into.push((k.clone(), q.clone())),
        }
    }
}

/// A sum's text, canonical as upstream's Quantity.String() of the sum.
pub(super) fn milli_text(milli: i128) -> String {
    let raw = if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    };
    let mut out = Vec::new();
    match kapi_codec::goscalar::canonical_quantity(&raw, &mut out) {
        Ok(()) => String::from_utf8(out).unwrap_or(raw),
        Err(_) => raw,
    }
}

pub(super) fn containers<'a>(spec: &'a Value, key: &str) -> &'a [Value] {
    spec[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The pod's effective requests or limits (`which`), as upstream's podRequests/podLimits:
/// containers summed, restartable (sidecar) init containers added, other init containers as a
/// floor, pod-level resources overriding cpu, memory and hugepages.
pub(super) fn pod_total(spec: &Value, which: &str) -> Vec<(String, Qty)> {
    let mut total = Vec::new();
    for c in containers(spec, "containers") {
        add(&mut total, &list(&c["resources"][which]));
    }
    let mut sidecars = Vec::new();
    let mut init_floor = Vec::new();
    for c in containers(spec, "initContainers") {
        let own = list(&c["resources"][which]);
        let this = if c["restartPolicy"] == "Always" {
            add(&mut total, &own);
            add(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut tmp = own;
            add(&mut tmp, &sidecars);
            tmp
        };
        max_into(&mut init_floor, &this);
    }
    max_into(&mut total, &init_floor);
    for (k, q) in list(&spec["resources"][which]) {
        if k == "cpu" || k == "memory" || k.starts_with("hugepages-") {
            match total.iter_mut().find(|(n, _)| *n == k) {
                Some((_, have)) => *have = q,
                None => total.push((k, q)),
            }
        }
    }
    total.sort_by(|a, b| a.0.cmp(&b.0));
    total
}
