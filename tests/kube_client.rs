//! The `kube` crate (kube-rs) against the real kapi binary: typed create, get, list, patch,
//! delete, and its watcher, as a Rust controller would use them.

mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, Config};
use support::kapi::Kapi;

async fn client(k: &Kapi) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(k.kubeconfig()).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

fn configmap(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": "kube-test"}},
        "data": {"key": value},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_and_the_watcher_work() {
    let k = Kapi::start(&[], &[]);
    let client = client(&k).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"kube-system".to_string()), "{names:?}");

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    // The watcher starts first and must see the object the test creates.
    let mut events = watcher(
        cms.clone(),
        watcher::Config::default().labels("app=kube-test"),
    )
    .boxed();

    let created = cms
        .create(&PostParams::default(), &configmap("typed", "one"))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    let got = cms.get("typed").await.unwrap();
    assert_eq!(got.data.unwrap()["key"], "one");
    let listed = cms
        .list(&ListParams::default().labels("app=kube-test"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);

    let patched = cms
        .patch(
            "typed",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"key": "two"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["key"], "two");

    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(ev) = events.try_next().await.unwrap() {
            let objs: Vec<ConfigMap> = match ev {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => vec![o],
                _ => vec![],
            };
            if objs.iter().any(|o| {
                o.data
                    .as_ref()
                    .and_then(|d| d.get("key"))
                    .map(String::as_str)
                    == Some("two")
            }) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(seen, "the watcher never saw the patched object");

    cms.delete("typed", &DeleteParams::default()).await.unwrap();
    let err = cms.get("typed").await.unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (404, "NotFound")),
        other => panic!("expected a 404 Status, got {other:?}"),
    }
}
