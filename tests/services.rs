//! Service cluster IPs from `--service-cluster-ip-range` (one range or one per family),
//! claimed as IPAddress objects as upstream 1.33+ does, and node ports on upstream's shared
//! bitmap: dynamic values from the ranges' upper bands, requested ones honoured, conflicts
//! and out-of-range values refused as upstream, changed by updates (type changes, ports,
//! traffic policy, dual-stack upgrades and downgrades) and released on delete.

mod support;

use std::collections::BTreeSet;

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

/// Upstream's 422 for a requested node port another Service holds.
fn assert_port_taken(code: u16, st: &Value, port: u32) {
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["details"]["causes"][0]["field"],
        "spec.ports[0].nodePort"
    );
    let want = format!("Invalid value: {port}: provided port is already allocated");
    assert!(st["message"].as_str().unwrap().contains(&want), "{st}");
}

#[test]
fn node_ports_are_claimed_on_upstreams_shared_bitmap() {
    let etcd = support::etcd::Etcd::start();
    let mut k = Kapi::start(
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
    assert_port_taken(code, &st, 30005);
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
    // Repair on start: with the bitmap gone, a restarted kapi claims the Services' ports again
    // (upstream's repair loop), so they are not handed out twice.
    let out = etcd.etcdctl(&["del", "/registry/ranges/servicenodeports"]);
    assert!(out.status.success(), "{out:?}");
    k.kill_and_restart();
    let want: BTreeSet<u32> = [30005, u32::try_from(port).unwrap()].into();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !node_port_bitmap(&etcd, 30000).is_superset(&want) {
        assert!(
            std::time::Instant::now() < deadline,
            "not repaired: {:?}",
            node_port_bitmap(&etcd, 30000)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let c = Client::new(&k);
    let (code, st) = c.json(
        "POST",
        SERVICES,
        ct,
        &node_port_service("after-repair", Some(30005)),
    );
    assert_port_taken(code, &st, 30005);
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
    // The port is held: asking for it again is refused (upstream's 500, as its allocator
    // reports it), until the Service goes.
    let (code, st) = c.json("POST", SERVICES, ct, &lb("second", Some(health)));
    assert_eq!(code, 500, "{st}");
    assert_eq!(
        st["message"],
        format!(
            "Internal error occurred: failed to allocate requested HealthCheck NodePort {health}: provided port is already allocated"
        )
    );
    k.ok(&["delete", "service", "local"]);
    // The port's own node port is asked for too: a dynamic one could be the freed health port
    // (ports are allocated before the health port, as upstream's, so that would be a conflict).
    let node_port = svc["spec"]["ports"][0]["nodePort"].clone();
    let mut second = lb("second", Some(health));
    second["spec"]["ports"][0]["nodePort"] = node_port;
    let (code, svc) = c.json("POST", SERVICES, ct, &second);
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

/// The node ports set in upstream's RangeAllocation at `/registry/ranges/servicenodeports`
/// (a big-endian bit set, bit i for port base+i), read from etcd.
fn node_port_bitmap(etcd: &support::etcd::Etcd, base: u32) -> BTreeSet<u32> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RangeAllocation {
        #[prost(string, tag = "2")]
        range: String,
        #[prost(bytes = "vec", tag = "3")]
        data: Vec<u8>,
    }
    let out = etcd.etcdctl(&[
        "get",
        "/registry/ranges/servicenodeports",
        "--print-value-only",
    ]);
    let mut value = out.stdout;
    while value.last() == Some(&b'\n') {
        value.pop();
    }
    if value.is_empty() {
        // No bitmap (yet): nothing claimed.
        return BTreeSet::new();
    }
    let env = kapi_codec::envelope::Envelope::parse(&value).expect("a k8s envelope");
    let alloc = <RangeAllocation as prost::Message>::decode(env.raw).expect("a RangeAllocation");
    let mut ports = BTreeSet::new();
    for (i, byte) in alloc.data.iter().rev().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                ports.insert(base + (i as u32) * 8 + bit);
            }
        }
    }
    ports
}

/// The addresses held for Services (IPAddress names), the `kubernetes` Service's included.
fn addresses(c: &Client) -> BTreeSet<String> {
    let (code, list) = c.call("GET", ADDRESSES, "application/json", None);
    assert_eq!(code, 200, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

fn merge_patch(c: &Client, name: &str, patch: Value) -> (u16, Value) {
    c.json(
        "PATCH",
        &format!("{SERVICES}/{name}"),
        "application/merge-patch+json",
        &patch,
    )
}

fn node_port(svc: &Value, i: usize) -> u32 {
    svc["spec"]["ports"][i]["nodePort"].as_u64().unwrap_or(0) as u32
}

#[test]
fn updates_claim_and_release_addresses_and_node_ports_as_upstream() {
    let etcd = support::etcd::Etcd::start();
    let k = Kapi::start(
        &[
            "--etcd-servers",
            &etcd.endpoint,
            "--service-cluster-ip-range=10.34.0.0/24",
            "--service-node-port-range=30000-30100",
        ],
        &[],
    );
    let c = Client::new(&k);
    let ct = "application/json";
    let set = |ports: &[u32]| ports.iter().copied().collect::<BTreeSet<u32>>();

    let (code, svc) = c.json("POST", SERVICES, ct, &service("web", None));
    assert_eq!(code, 201, "{svc}");
    let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();

    // ClusterIP → NodePort: a node port is claimed; the address stays.
    let (code, svc) = merge_patch(&c, "web", json!({"spec": {"type": "NodePort"}}));
    assert_eq!(code, 200, "{svc}");
    assert_eq!(svc["spec"]["clusterIP"], ip.as_str());
    let first = node_port(&svc, 0);
    assert!((30000..=30100).contains(&first), "{svc}");
    assert_eq!(node_port_bitmap(&etcd, 30000), set(&[first]));

    // An added port gets its own node port; a named one is claimed and the old one released.
    let (code, svc) = merge_patch(
        &c,
        "web",
        json!({"spec": {"ports": [{"name": "a", "port": 80, "nodePort": 30005},
                                  {"name": "b", "port": 81}]}}),
    );
    assert_eq!(code, 200, "{svc}");
    assert_eq!(node_port(&svc, 0), 30005);
    let second = node_port(&svc, 1);
    assert!(second != 0 && second != 30005, "{svc}");
    assert_eq!(node_port_bitmap(&etcd, 30000), set(&[30005, second]));

    // A PUT of a manifest without the allocated values keeps them; a removed port gives its
    // node port back.
    let (_, current) = c.call("GET", &format!("{SERVICES}/web"), ct, None);
    let put = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "resourceVersion": current["metadata"]["resourceVersion"]},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"name": "a", "port": 80}]}});
    let (code, svc) = c.json("PUT", &format!("{SERVICES}/web"), ct, &put);
    assert_eq!(code, 200, "{svc}");
    assert_eq!(svc["spec"]["clusterIP"], ip.as_str());
    assert_eq!(node_port(&svc, 0), 30005);
    assert_eq!(node_port_bitmap(&etcd, 30000), set(&[30005]));

    // Another Service asking for a held port is refused with upstream's 422.
    let (code, _) = c.json("POST", SERVICES, ct, &service("other", None));
    assert_eq!(code, 201);
    let (code, st) = merge_patch(
        &c,
        "other",
        json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30005}]}}),
    );
    assert_port_taken(code, &st, 30005);
    assert_eq!(
        node_port_bitmap(&etcd, 30000),
        set(&[30005]),
        "nothing leaked"
    );

    // LoadBalancer with Local traffic: a health-check node port; back to Cluster: released.
    let (code, svc) = merge_patch(
        &c,
        "web",
        json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}}),
    );
    assert_eq!(code, 200, "{svc}");
    let health = svc["spec"]["healthCheckNodePort"].as_u64().unwrap_or(0) as u32;
    assert!(health != 0 && health != 30005, "{svc}");
    assert_eq!(node_port(&svc, 0), 30005);
    assert_eq!(node_port_bitmap(&etcd, 30000), set(&[30005, health]));
    let (code, svc) = merge_patch(
        &c,
        "web",
        json!({"spec": {"externalTrafficPolicy": "Cluster"}}),
    );
    assert_eq!(code, 200, "{svc}");
    assert!(svc["spec"].get("healthCheckNodePort").is_none(), "{svc}");
    assert_eq!(node_port_bitmap(&etcd, 30000), set(&[30005]));

    // Back to ClusterIP (kubectl): the node ports go, from the spec and the bitmap.
    k.ok(&[
        "patch",
        "service",
        "web",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    let (_, svc) = c.call("GET", &format!("{SERVICES}/web"), ct, None);
    assert!(svc["spec"]["ports"][0].get("nodePort").is_none(), "{svc}");
    assert!(svc["spec"].get("externalTrafficPolicy").is_none(), "{svc}");
    assert_eq!(node_port_bitmap(&etcd, 30000), set(&[]));

    // The address is immutable (upstream's message and field).
    let (code, st) = merge_patch(
        &c,
        "web",
        json!({"spec": {"clusterIP": "10.34.0.7", "clusterIPs": ["10.34.0.7"]}}),
    );
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["details"]["causes"][0]["field"], "spec.clusterIPs[0]");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains(r#"spec.clusterIPs[0]: Invalid value: ["10.34.0.7"]: field is immutable"#),
        "{st}"
    );
    assert!(
        !addresses(&c).contains("10.34.0.7"),
        "a refused update claims nothing"
    );

    // A dry run of the change shows it and lets nothing go.
    let (code, svc) = c.json(
        "PATCH",
        &format!("{SERVICES}/web?dryRun=All"),
        "application/merge-patch+json",
        &json!({"spec": {"type": "ExternalName", "externalName": "web.example.com"}}),
    );
    assert_eq!(code, 200, "{svc}");
    assert!(svc["spec"].get("clusterIP").is_none(), "{svc}");
    assert!(addresses(&c).contains(&ip), "{ip} still held");

    // ClusterIP → ExternalName releases the address; back to ClusterIP allocates a new one,
    // here a requested one.
    let (code, svc) = merge_patch(
        &c,
        "web",
        json!({"spec": {"type": "ExternalName", "externalName": "web.example.com"}}),
    );
    assert_eq!(code, 200, "{svc}");
    assert!(svc["spec"].get("clusterIP").is_none(), "{svc}");
    assert!(svc["spec"].get("ipFamilies").is_none(), "{svc}");
    assert!(!addresses(&c).contains(&ip), "{ip} released");
    let (code, svc) = merge_patch(
        &c,
        "web",
        json!({"spec": {"type": "ClusterIP", "externalName": null, "clusterIP": "10.34.0.9"}}),
    );
    assert_eq!(code, 200, "{svc}");
    assert_eq!(svc["spec"]["clusterIPs"], json!(["10.34.0.9"]));
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
    let (code, addr) = c.call("GET", &format!("{ADDRESSES}/10.34.0.9"), ct, None);
    assert_eq!(code, 200, "{addr}");
    assert_eq!(addr["spec"]["parentRef"]["name"], "web");

    // A delete releases everything the Service held.
    let (code, svc) = merge_patch(
        &c,
        "web",
        json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}}),
    );
    assert_eq!(code, 200, "{svc}");
    let held = set(&[
        node_port(&svc, 0),
        svc["spec"]["healthCheckNodePort"].as_u64().unwrap() as u32,
    ]);
    assert_eq!(node_port_bitmap(&etcd, 30000), held);
    k.ok(&["delete", "service", "web"]);
    assert_eq!(node_port_bitmap(&etcd, 30000), set(&[]));
    assert!(!addresses(&c).contains("10.34.0.9"));
    // Single-stack cluster: dual-stack cannot be required.
    let mut dual = service("dual", None);
    dual["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
    let (code, st) = c.json("POST", SERVICES, ct, &dual);
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains(r#"spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#),
        "{st}"
    );
}

#[test]
fn dual_stack_services_get_an_address_per_family() {
    let k = Kapi::start(
        &["--service-cluster-ip-range=fd00:10:96::/112,10.35.0.0/24"],
        &[],
    );
    let c = Client::new(&k);
    let ct = "application/json";
    // The default ServiceCIDR has both ranges; the kubernetes Service is single-stack on the
    // primary (here IPv6) one.
    let (code, cidr) = c.call(
        "GET",
        "/apis/networking.k8s.io/v1/servicecidrs/kubernetes",
        ct,
        None,
    );
    assert_eq!(code, 200, "{cidr}");
    assert_eq!(
        cidr["spec"]["cidrs"],
        json!(["fd00:10:96::/112", "10.35.0.0/24"])
    );
    let (_, kubernetes) = c.call("GET", &format!("{SERVICES}/kubernetes"), ct, None);
    assert_eq!(kubernetes["spec"]["clusterIPs"], json!(["fd00:10:96::1"]));
    assert_eq!(kubernetes["spec"]["ipFamilies"], json!(["IPv6"]));
    assert_eq!(kubernetes["spec"]["ipFamilyPolicy"], "SingleStack");

    // No policy: single-stack on the primary family.
    let (code, svc) = c.json("POST", SERVICES, ct, &service("plain", None));
    assert_eq!(code, 201, "{svc}");
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv6"]));
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("fd00:10:96::"),
        "{svc}"
    );

    // PreferDualStack: one address per family, each an IPAddress labelled with its family.
    let mut both = service("both", None);
    both["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
    let (code, svc) = c.json("POST", SERVICES, ct, &both);
    assert_eq!(code, 201, "{svc}");
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv6", "IPv4"]));
    let ips: Vec<String> = svc["spec"]["clusterIPs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ips.len(), 2, "{svc}");
    assert!(
        ips[0].starts_with("fd00:10:96::") && ips[1].starts_with("10.35.0."),
        "{ips:?}"
    );
    for (ip, family) in ips.iter().zip(["IPv6", "IPv4"]) {
        let (code, addr) = c.call("GET", &format!("{ADDRESSES}/{ip}"), ct, None);
        assert_eq!(code, 200, "{ip}: {addr}");
        assert_eq!(
            addr["metadata"]["labels"]["ipaddress.kubernetes.io/ip-family"],
            family
        );
    }

    // RequireDualStack with IPv4 first and a requested IPv4 address.
    let mut v4_first = service("v4first", Some("10.35.0.7"));
    v4_first["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
    let (code, svc) = c.json("POST", SERVICES, ct, &v4_first);
    assert_eq!(code, 201, "{svc}");
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    assert_eq!(svc["spec"]["clusterIPs"][0], "10.35.0.7");

    // Downgrade (kubectl): SingleStack drops and releases the secondary address.
    k.ok(&[
        "patch",
        "service",
        "both",
        "-p",
        r#"{"spec":{"ipFamilyPolicy":"SingleStack"}}"#,
    ]);
    let (_, svc) = c.call("GET", &format!("{SERVICES}/both"), ct, None);
    assert_eq!(svc["spec"]["clusterIPs"], json!([ips[0]]));
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv6"]));
    let (code, _) = c.call("GET", &format!("{ADDRESSES}/{}", ips[1]), ct, None);
    assert_eq!(code, 404, "the secondary address is released");

    // Upgrade: RequireDualStack adds an IPv4 address; the primary one stays.
    let (code, svc) = merge_patch(
        &c,
        "both",
        json!({"spec": {"ipFamilyPolicy": "RequireDualStack"}}),
    );
    assert_eq!(code, 200, "{svc}");
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv6", "IPv4"]));
    assert_eq!(svc["spec"]["clusterIPs"][0], ips[0].as_str());
    let secondary = svc["spec"]["clusterIPs"][1].as_str().unwrap().to_owned();
    assert!(secondary.starts_with("10.35.0."), "{svc}");
    let (code, _) = c.call("GET", &format!("{ADDRESSES}/{secondary}"), ct, None);
    assert_eq!(code, 200);

    // Cutting the secondary address without SingleStack is refused.
    let (code, st) = merge_patch(&c, "both", json!({"spec": {"clusterIPs": [ips[0]]}}));
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("must be 'SingleStack' to release the secondary cluster IP"),
        "{st}"
    );
    // Two addresses of one family are refused.
    let mut twice = service("twice", Some("10.35.0.8"));
    twice["spec"]["clusterIPs"] = json!(["10.35.0.8", "10.35.0.9"]);
    twice["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
    let (code, st) = c.json("POST", SERVICES, ct, &twice);
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("may specify no more than one IP for each IP family"),
        "{st}"
    );
}

/// A small HTTP/1.1 server on a free loopback port, standing in for a pod's: it answers each
/// request with JSON naming its method, path (with query) and body; `/stream` answers in two
/// chunks, the second once the test says so (`go`).
struct Backend {
    port: u16,
    go: std::sync::mpsc::Sender<()>,
}

impl Backend {
    fn start() -> Backend {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().unwrap().port();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_owned(),
                    parts.next().unwrap_or("").to_owned(),
                );
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                if path == "/stream" {
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
                    let _ = conn.write_all(head.as_bytes());
                    let _ = conn.write_all(b"6\r\nfirst\n\r\n");
                    let _ = conn.flush();
                    // Bounded: a proxy that buffers the whole answer fails the test, not hangs it.
                    let _ = wait.recv_timeout(std::time::Duration::from_secs(30));
                    let _ = conn.write_all(b"7\r\nsecond\n\r\n0\r\n\r\n");
                    continue;
                }
                let answer = json!({"method": method, "path": path,
                                    "body": String::from_utf8_lossy(&body)})
                .to_string();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Backend { port, go }
    }
}

#[test]
fn pods_and_services_proxy_to_the_pod_and_a_ready_endpoint() {
    let k = Kapi::start(&[], &[("KAPI_PROXY_ALLOW_LOOPBACK", "1")]);
    let c = Client::new(&k);
    let ct = "application/json";
    let backend = Backend::start();
    let port = backend.port;
    const PODS: &str = "/api/v1/namespaces/default/pods";
    let pod = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": "web",
                                        "ports": [{"containerPort": port}]}]}})
    };
    for name in ["web", "noip"] {
        let (code, body) = c.json("POST", PODS, ct, &pod(name));
        assert_eq!(code, 201, "{body}");
    }
    let (code, body) = c.json(
        "PATCH",
        &format!("{PODS}/web/status"),
        "application/merge-patch+json",
        &json!({"status": {"podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}}),
    );
    assert_eq!(code, 200, "{body}");

    // kubectl through the pod's proxy, the port named or the first container port.
    let out = k.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/default/pods/web:{port}/proxy/hello?x=1"),
    ]);
    let got: Value = serde_json::from_str(&out).expect("the backend's JSON");
    // The query goes along (kubectl's own `timeout` with it).
    assert_eq!(got["method"], "GET", "{got}");
    let path = got["path"].as_str().unwrap();
    assert!(path.starts_with("/hello?") && path.contains("x=1"), "{got}");
    let (code, got) = c.call(
        "GET",
        &format!("{PODS}/http:web:{port}/proxy/a/b"),
        ct,
        None,
    );
    assert_eq!(code, 200, "{got}");
    assert_eq!(got["path"], "/a/b");
    // Every method, with its body.
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let (code, got) = c.send(
            method,
            &format!("{PODS}/web/proxy/items"),
            "text/plain",
            b"payload".to_vec(),
        );
        assert_eq!(code, 200, "{method}: {got}");
        assert_eq!(
            got,
            json!({"method": method, "path": "/items", "body": "payload"})
        );
    }

    // The answer streams: the first chunk arrives before the backend sends the second.
    let mut streamed = c.raw("GET", &format!("{PODS}/web:{port}/proxy/stream"));
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut streamed, &mut first).expect("the first chunk");
    assert_eq!(&first, b"first\n");
    backend.go.send(()).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut streamed, &mut rest).expect("the rest");
    assert_eq!(rest, "second\n");

    // Upstream's errors: no pod address, a bad name, nothing listening.
    let (code, st) = c.call("GET", &format!("{PODS}/noip/proxy/x"), ct, None);
    assert_eq!(
        (code, st["message"].as_str()),
        (400, Some("address not allowed")),
        "{st}"
    );
    let (code, st) = c.call("GET", &format!("{PODS}/ftp:web:80/proxy/x"), ct, None);
    assert_eq!(code, 400, "{st}");
    assert_eq!(st["message"], r#"invalid pod request "ftp:web:80""#);
    let (code, st) = c.call("GET", &format!("{PODS}/missing/proxy/x"), ct, None);
    assert_eq!(code, 404, "{st}");
    let (code, st) = c.call("GET", &format!("{PODS}/web:1/proxy/x"), ct, None);
    assert_eq!(code, 500, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .starts_with("error trying to reach service: "),
        "{st}"
    );

    // A Service: a ready endpoint of its EndpointSlice, the port by number or name.
    let web = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": port}]}});
    let (code, body) = c.json("POST", SERVICES, ct, &web);
    assert_eq!(code, 201, "{body}");
    let (code, st) = c.call("GET", &format!("{SERVICES}/web:80/proxy/x"), ct, None);
    assert_eq!(code, 503, "{st}");
    assert_eq!(
        st["message"],
        r#"no endpoints available for service "web:80""#
    );
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true},
                       "targetRef": {"kind": "Pod", "namespace": "default", "name": "web"}},
                      {"addresses": ["127.0.0.2"], "conditions": {"ready": false}}],
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}]});
    let (code, body) = c.json(
        "POST",
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        ct,
        &slice,
    );
    assert_eq!(code, 201, "{body}");
    let out = k.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/web:80/proxy/via/service",
    ]);
    let got: Value = serde_json::from_str(&out).expect("the backend's JSON");
    assert!(
        got["path"].as_str().unwrap().starts_with("/via/service?"),
        "{got}"
    );
    for id in ["web:http", "http:web:http"] {
        let (code, got) = c.send(
            "POST",
            &format!("{SERVICES}/{id}/proxy/named"),
            "text/plain",
            b"to the service".to_vec(),
        );
        assert_eq!(code, 200, "{id}: {got}");
        assert_eq!(got["body"], "to the service");
    }
    let (code, st) = c.call("GET", &format!("{SERVICES}/web:81/proxy/x"), ct, None);
    assert_eq!(code, 503, "{st}");
    assert_eq!(
        st["message"],
        r#"no service port 81 found for service "web""#
    );
}
