//! `kapi decode` / `kapi encode`, driven as an operator would: the real binary, a value as
//! `etcdctl get --print-value-only` prints it, output compared with what upstream served.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const STORED: &[u8] = include_bytes!("../codec/testdata/objects/pod.etcd.bin");
const SERVED_JSON: &[u8] = include_bytes!("../codec/testdata/objects/pod.out.raw.json");
const SERVED_PB: &[u8] = include_bytes!("../codec/testdata/objects/pod.get.pb");
const SERVED_YAML: &[u8] = include_bytes!("../codec/testdata/objects/pod.get.yaml");

fn kapi(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kapi"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kapi starts");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// What `etcdctl get --print-value-only` prints: the value and a newline.
fn etcdctl_output() -> Vec<u8> {
    let mut v = STORED.to_vec();
    v.push(b'\n');
    v
}

#[test]
fn decode_of_an_upstream_etcd_value_prints_the_json_upstream_served() {
    let out = kapi(&["decode", "--resource-version", "289"], &etcdctl_output());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(SERVED_JSON.to_vec()).unwrap()
    );
}

#[test]
fn decode_to_yaml_prints_the_yaml_upstream_served() {
    let out = kapi(
        &["decode", "--to", "yaml", "--resource-version", "289"],
        &etcdctl_output(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(SERVED_YAML.to_vec()).unwrap()
    );
}

#[test]
fn encode_of_served_json_and_yaml_gives_the_served_protobuf() {
    for input in [SERVED_JSON, SERVED_YAML] {
        let out = kapi(&["encode", "--validate", "strict"], input);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, SERVED_PB);
    }
}

#[test]
fn unknown_fields_warn_by_default_and_fail_under_strict() {
    let json = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","bogus":1},"data":{"a":"b"}}"#;
    let out = kapi(&["encode", "--to", "json"], json);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"unknown field "metadata.bogus""#));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"c\"},\"data\":{\"a\":\"b\"}}\n"
    );
    let strict = kapi(&["encode", "--validate", "strict"], json);
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("strict decoding error"));
}

#[test]
fn bad_input_fails_with_a_precise_message_and_no_panic() {
    let cases: &[(&[u8], &str)] = &[
        (&STORED[..200], "truncated"),
        (
            b"k8s\0\x0a\x09\x0a\x02v1\x12\x03Foo\x12\x00",
            "no kind \"Foo\"",
        ),
        (b"k8s:enc:aescbc:v1:key1:xxxx", "encrypted"),
        (
            b"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{\"containers\":7}}",
            "cannot unmarshal number",
        ),
        (b"{\"apiVersion\": \"v1\", ", "unexpected end of JSON input"),
        (b"\x00\x01\x02", "neither protobuf"),
    ];
    for (input, expect) in cases {
        let out = kapi(&["decode"], input);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(expect), "{expect:?} not in {err:?}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn decode_of_a_bare_watch_event_gives_upstreams_json() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("codec/testdata/roundtrip");
    let pb = std::fs::read(dir.join("core.v1.WatchEvent.pb")).expect("the fixture");
    let out = kapi(&["decode"], &pb);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let want: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("core.v1.WatchEvent.json")).expect("the fixture"),
    )
    .expect("JSON");
    assert_eq!(got, want);
}
