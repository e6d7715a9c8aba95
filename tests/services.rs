//! Service cluster IPs from `--service-cluster-ip-range`, claimed as IPAddress objects as
//! upstream 1.33+ does: dynamic addresses from the range's upper band, requested ones honoured,
//! conflicts and out-of-range addresses refused with upstream's 422, released on delete.

mod support;

use serde_json::{Value, json};
use support::client::Client;
use support::kapi::Kapi;

fn service(name: &str, cluster_ip: Option<&str>) -> Value {
    let mut spec = json!({"ports": [{"port": 80}], "selector": {"app": name}});
    if let Some(ip) = cluster_ip {
        spec["clusterIP"] = json!(ip);
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

const SERVICES: &str = "/api/v1/namespaces/default/services";
const ADDRESSES: &str = "/apis/networking.k8s.io/v1/ipaddresses";

#[test]
fn cluster_ips_are_claimed_as_ip_addresses_and_released() {
    let k = Kapi::start(&["--service-cluster-ip-range=10.32.0.0/24"], &[]);
    let c = Client::new(&k);
    let ct = "application/json";

    let (code, svc) = c.json("POST", SERVICES, ct, &service("web", None));
    assert_eq!(code, 201, "{svc}");
    let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert_eq!(svc["spec"]["clusterIPs"], json!([ip]));
    let last: u32 = ip.strip_prefix("10.32.0.").unwrap().parse().unwrap();
    // The upper band (offset 16 and up), leaving the lower one to requested addresses.
    assert!((17..=254).contains(&last), "{ip}");
    let (code, addr) = c.call("GET", &format!("{ADDRESSES}/{ip}"), ct, None);
    assert_eq!(code, 200, "{addr}");
    assert_eq!(addr["spec"]["parentRef"]["name"], "web");
    assert_eq!(addr["spec"]["parentRef"]["resource"], "services");

    // A requested address is honoured once; a second claim and an out-of-range one are 422.
    let (code, svc) = c.json("POST", SERVICES, ct, &service("fixed", Some("10.32.0.5")));
    assert_eq!(code, 201, "{svc}");
    assert_eq!(svc["spec"]["clusterIP"], "10.32.0.5");
    let (code, st) = c.json("POST", SERVICES, ct, &service("again", Some("10.32.0.5")));
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["details"]["causes"][0]["field"], "spec.clusterIPs");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("failed to allocate IP 10.32.0.5: provided IP is already allocated"),
        "{st}"
    );
    let (code, st) = c.json("POST", SERVICES, ct, &service("away", Some("192.168.9.9")));
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("The range of valid IPs is 10.32.0.0/24"),
        "{st}"
    );
    // A refused create leaves no address behind; neither does a headless Service.
    let (code, svc) = c.json("POST", SERVICES, ct, &service("headless", Some("None")));
    assert_eq!(code, 201, "{svc}");
    let (_, list) = c.call("GET", ADDRESSES, ct, None);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["metadata"]["name"].as_str())
        .collect();
    // The kubernetes Service's, web's and fixed's.
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"10.32.0.1") && names.contains(&"10.32.0.5"));

    // Dry run: an address shown, none claimed.
    let (code, svc) = c.json(
        "POST",
        &format!("{SERVICES}?dryRun=All"),
        ct,
        &service("dry", None),
    );
    assert_eq!(code, 201, "{svc}");
    let dry_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(dry_ip.starts_with("10.32.0."), "{dry_ip}");
    let (code, _) = c.call("GET", &format!("{ADDRESSES}/{dry_ip}"), ct, None);
    assert_eq!(code, 404);

    // Deleting the Service lets its address go; kubectl sees the same.
    k.ok(&["delete", "service", "web"]);
    let (code, _) = c.call("GET", &format!("{ADDRESSES}/{ip}"), ct, None);
    assert_eq!(code, 404);
    let out = k.ok(&["create", "service", "clusterip", "viactl", "--tcp=8080:80"]);
    assert!(out.contains("created"), "{out}");
    let got = k.ok(&[
        "get",
        "service",
        "viactl",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert!(got.starts_with("10.32.0."), "{got}");
}

fn node_port_service(name: &str, node_port: Option<i64>) -> Value {
    let mut port = json!({"port": 80});
    if let Some(p) = node_port {
        port["nodePort"] = json!(p);
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
           "spec": {"type": "NodePort", "ports": [port], "selector": {"app": name}}})
}

#[test]
fn node_ports_are_claimed_on_upstreams_shared_bitmap() {
    let etcd = support::etcd::Etcd::start();
    let k = Kapi::start(
        &[
            "--etcd-servers",
            &etcd.endpoint,
            "--service-node-port-range=30000-30100",
        ],
        &[],
    );
    let c = Client::new(&k);
    let ct = "application/json";
    let (code, svc) = c.json("POST", SERVICES, ct, &node_port_service("np", None));
    assert_eq!(code, 201, "{svc}");
    let port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    // The upper band: the lowest 16 ports are kept for ports clients ask for.
    assert!((30016..=30100).contains(&port), "{port}");
    let (code, svc) = c.json(
        "POST",
        SERVICES,
        ct,
        &node_port_service("fixed", Some(30005)),
    );
    assert_eq!(code, 201, "{svc}");
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30005);
    let (code, st) = c.json(
        "POST",
        SERVICES,
        ct,
        &node_port_service("twice", Some(30005)),
    );
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["details"]["causes"][0]["field"],
        "spec.ports[0].nodePort"
    );
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("Invalid value: 30005: provided port is already allocated"),
        "{st}"
    );
    let (code, st) = c.json("POST", SERVICES, ct, &node_port_service("far", Some(32000)));
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("The range of valid ports is 30000-30100"),
        "{st}"
    );
    // The bitmap is upstream's key and encoding.
    let out = etcd.etcdctl(&[
        "get",
        "/registry/ranges/servicenodeports",
        "--print-value-only",
    ]);
    let value = out.stdout;
    assert!(value.starts_with(b"k8s\0"), "{value:?}");
    assert!(value.windows(11).any(|w| w == b"30000-30100"), "{value:?}");
    // Deleting the Service lets the port go.
    k.ok(&["delete", "service", "fixed"]);
    let (code, svc) = c.json(
        "POST",
        SERVICES,
        ct,
        &node_port_service("again", Some(30005)),
    );
    assert_eq!(code, 201, "{svc}");
}

#[test]
fn local_load_balancers_get_a_health_check_node_port() {
    let k = Kapi::start(&["--service-node-port-range=30000-30100"], &[]);
    let c = Client::new(&k);
    let ct = "application/json";
    let lb = |name: &str, health: Option<i64>| {
        let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                     "ports": [{"port": 80}], "selector": {"app": name}}});
        if let Some(h) = health {
            svc["spec"]["healthCheckNodePort"] = json!(h);
        }
        svc
    };
    let (code, svc) = c.json("POST", SERVICES, ct, &lb("local", None));
    assert_eq!(code, 201, "{svc}");
    let health = svc["spec"]["healthCheckNodePort"].as_i64().unwrap_or(0);
    assert!((30000..=30100).contains(&health), "{svc}");
    assert_ne!(Some(health), svc["spec"]["ports"][0]["nodePort"].as_i64());
    // The port is held: asking for it again is refused, until the Service goes.
    let (code, st) = c.json("POST", SERVICES, ct, &lb("second", Some(health)));
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["details"]["causes"][0]["field"],
        "spec.healthCheckNodePort"
    );
    k.ok(&["delete", "service", "local"]);
    let (code, svc) = c.json("POST", SERVICES, ct, &lb("second", Some(health)));
    assert_eq!(code, 201, "{svc}");
    assert_eq!(svc["spec"]["healthCheckNodePort"], health);
    // Only a Local load balancer may have one.
    let mut cluster = lb("cluster", Some(30050));
    cluster["spec"]["externalTrafficPolicy"] = json!("Cluster");
    let (code, st) = c.json("POST", SERVICES, ct, &cluster);
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"].as_str().unwrap_or("").contains(
            "spec.healthCheckNodePort: Invalid value: 30050: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
        ),
        "{st}"
    );
}
