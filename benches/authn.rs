//! Service-account token authentication, the hot path of every request that carries one:
//! the whole check with the token's signature remembered (`ServiceAccounts::authenticate_token`:
//! SHA-256 of the token, the verified-token map, time and audiences, the ServiceAccount's uid
//! from the watch cache) against the baseline of checking the signature alone on every
//! request (`jwt::verify`, RS256 with a 2048-bit key and ES256), which the memory saves.
//!
//! Run: `cargo bench --bench authn`.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use kapi::api::registry::Registry;
use kapi::authn::TokenOutcome;
use kapi::authn::flags::Settings;
use kapi::authn::keys::SigningKey;
use kapi::authn::lookup::Lookup;
use kapi::authn::serviceaccount::{Binding, Ref, ServiceAccounts, claims, now_unix};
use kapi_cache::{Cache, Listed};
use kapi_codec::FieldValidation;
use kapi_codec::to_pb::json_to_envelope;

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const UID: &str = "4a9b3f4e-0000-4000-8000-000000000001";

/// A watch cache holding one ServiceAccount, `default/builder`.
fn cache_with_service_account(registry: &Registry) -> Arc<Cache> {
    let cache = Arc::new(Cache::new(
        kapi::api::cached::specs(registry, "/registry/"),
        1 << 20,
    ));
    let sa = serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "builder", "namespace": "default", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
    });
    let mut pb = Vec::new();
    json_to_envelope(
        &serde_json::to_vec(&sa).unwrap(),
        None,
        FieldValidation::Strict,
        &mut pb,
    )
    .unwrap();
    cache.reset(
        2,
        [Listed {
            key: Bytes::from_static(b"/registry/serviceaccounts/default/builder"),
            value: Bytes::from(pb),
            create_revision: 2,
            mod_revision: 2,
        }],
    );
    cache
}

fn authenticate(c: &mut Criterion) {
    let registry = Registry::builtin();
    let cache = cache_with_service_account(&registry);
    let lookup = Arc::new(Lookup::new(cache, "/registry/".into(), &registry));
    let keys = [
        (
            "rs256",
            &include_bytes!("../tests/data/serviceaccounts/rsa.key")[..],
        ),
        (
            "es256",
            &include_bytes!("../tests/data/serviceaccounts/ec.key")[..],
        ),
    ];
    let mut group = c.benchmark_group("service_account_token");
    for (name, pem) in keys {
        let key = Arc::new(SigningKey::from_pem(pem).unwrap());
        let settings = Settings {
            public_keys: vec![key.public.clone()],
            signing_key: Some(key),
            ..Settings::default()
        };
        let audiences = settings.api_audiences.clone();
        let sas = ServiceAccounts::new(settings, lookup.clone());
        let sa = Ref {
            name: "builder".into(),
            uid: UID.into(),
        };
        let none = Binding {
            pod: None,
            secret: None,
            node: None,
        };
        let token = sas
            .sign(&claims(
                ISSUER,
                "default",
                &sa,
                &none,
                now_unix(),
                3600,
                None,
                &audiences,
            ))
            .unwrap();
        assert!(matches!(
            sas.authenticate_token(&token, &audiences),
            TokenOutcome::User(..)
        ));
        group.bench_function(format!("{name}/remembered"), |b| {
            b.iter(|| black_box(sas.authenticate_token(black_box(&token), &audiences)))
        });
        group.bench_function(format!("{name}/signature_every_time"), |b| {
            b.iter(|| {
                black_box(kapi::authn::jwt::verify(
                    black_box(&token),
                    &sas.settings.public_keys,
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, authenticate);
criterion_main!(benches);
