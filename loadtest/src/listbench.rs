//! `listbench`: N sequential full LISTs of one collection, as protobuf and as JSON, each body read
//! to its end and its items counted by a light streaming scan (no decode), reported as
//! min/median/max seconds, bytes and MB/s; and, as the baseline of the same run, the same number
//! of `etcdctl get --prefix` of the collection's keys, with the ratio server/etcdctl.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::Target;

/// The encodings a LIST can be asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "protobuf" | "pb" => Ok(Format::Protobuf),
            "json" => Ok(Format::Json),
            _ => Err(format!("unknown format {s}: protobuf or json")),
        }
    }
    fn accept(self) -> &'static str {
        match self {
            Format::Protobuf => "application/vnd.kubernetes.protobuf",
            Format::Json => "application/json",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Format::Protobuf => "protobuf",
            Format::Json => "json",
        }
    }
}

/// What `listbench` runs.
pub struct Bench {
    /// The collection's path, e.g. `/api/v1/pods`.
    pub path: String,
    pub count: usize,
    pub warmup: usize,
    pub formats: Vec<Format>,
    /// etcd endpoint for the `etcdctl get --prefix` baseline.
    pub etcd_endpoint: Option<String>,
    /// The etcd key prefix of the collection, e.g. `/registry/pods/`.
    pub etcd_prefix: String,
    pub etcdctl: String,
    /// Extra etcdctl flags (TLS files, say).
    pub etcdctl_flags: Vec<String>,
    /// One LIST (or etcdctl run) may take this long.
    pub timeout: Duration,
}

/// One timed fetch.
#[derive(Serialize, Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Seconds to the response headers (for etcdctl: not known, 0).
    pub headers_s: f64,
    /// Seconds to the last byte.
    pub total_s: f64,
    pub bytes: u64,
    /// Items counted in the body (etcdctl: the count of the range).
    pub items: u64,
}

/// The runs of one kind (a format, or etcdctl) and their summary.
#[derive(Serialize, Clone, Debug)]
pub struct Series {
    pub what: String,
    pub samples: Vec<Sample>,
    pub min_s: f64,
    pub median_s: f64,
    pub max_s: f64,
    pub median_headers_s: f64,
    pub bytes: u64,
    pub items: u64,
    /// Megabytes (10^6) per second at the median time.
    pub mb_per_s: f64,
}

impl Series {
    fn of(what: String, samples: Vec<Sample>) -> Series {
        let mut t: Vec<f64> = samples.iter().map(|s| s.total_s).collect();
        t.sort_by(f64::total_cmp);
        let mut h: Vec<f64> = samples.iter().map(|s| s.headers_s).collect();
        h.sort_by(f64::total_cmp);
        let median = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else if v.len() % 2 == 1 {
                v[v.len() / 2]
            } else {
                (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
            }
        };
        let last = samples.last().copied().unwrap_or_default();
        let median_s = median(&t);
        Series {
            what,
            min_s: t.first().copied().unwrap_or(0.0),
            max_s: t.last().copied().unwrap_or(0.0),
            median_headers_s: median(&h),
            bytes: last.bytes,
            items: last.items,
            mb_per_s: if median_s > 0.0 {
                last.bytes as f64 / 1e6 / median_s
            } else {
                0.0
            },
            median_s,
            samples,
        }
    }
}

#[derive(Serialize)]
pub struct Report {
    pub server: String,
    pub path: String,
    pub count: usize,
    pub lists: Vec<Series>,
    pub etcdctl: Option<Series>,
}

pub async fn run(target: &Target, b: &Bench) -> Result<Report, String> {
    let http = target.bulk_client(b.timeout)?;
    let url = format!("{}{}", target.server, b.path);
    let mut lists = Vec::new();
    for &f in &b.formats {
        for _ in 0..b.warmup {
            fetch(&http, target, &url, f).await?;
        }
        let mut samples = Vec::new();
        for i in 0..b.count {
            let s = fetch(&http, target, &url, f).await?;
            eprintln!(
                "listbench: LIST {} ({}) {}/{}: {:.3} s, {} bytes, {} items",
                b.path,
                f.name(),
                i + 1,
                b.count,
                s.total_s,
                s.bytes,
                s.items
            );
            samples.push(s);
        }
        lists.push(Series::of(
            format!("LIST {} ({})", b.path, f.name()),
            samples,
        ));
    }
    let etcdctl = match &b.etcd_endpoint {
        Some(ep) => Some(etcdctl_baseline(b, ep)?),
        None => None,
    };
    Ok(Report {
        server: target.server.clone(),
        path: b.path.clone(),
        count: b.count,
        lists,
        etcdctl,
    })
}

/// One LIST: the whole body read chunk by chunk, its items counted on the fly.
async fn fetch(
    http: &reqwest::Client,
    target: &Target,
    url: &str,
    f: Format,
) -> Result<Sample, String> {
    let start = Instant::now();
    let mut resp = target
        .authorize(http.get(url))
        .header("Accept", f.accept())
        .send()
        .await
        .map_err(|e| format!("LIST {url}: {e}"))?;
    let headers_s = start.elapsed().as_secs_f64();
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(format!(
            "LIST {url}: HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        ));
    }
    let mut bytes = 0u64;
    let mut json = JsonItems::default();
    let mut pb = ProtobufItems::default();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("LIST {url}: reading the body: {e}"))?
    {
        bytes += chunk.len() as u64;
        match f {
            Format::Json => json.feed(&chunk),
            Format::Protobuf => pb.feed(&chunk),
        }
    }
    let total_s = start.elapsed().as_secs_f64();
    let items = match f {
        Format::Json => json.items,
        Format::Protobuf => {
            if !pb.magic_ok() {
                return Err(format!(
                    "LIST {url}: the body is not a Kubernetes protobuf envelope (k8s\\0)"
                ));
            }
            pb.items
        }
    };
    Ok(Sample {
        headers_s,
        total_s,
        bytes,
        items,
    })
}

fn etcdctl_command(b: &Bench, endpoint: &str) -> Command {
    let mut c = Command::new(&b.etcdctl);
    c.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg(format!("--command-timeout={}s", b.timeout.as_secs().max(1)))
        .args(&b.etcdctl_flags);
    c
}

/// `etcdctl get --prefix` of the collection's keys, `count` times, its output read to a sink.
fn etcdctl_baseline(b: &Bench, endpoint: &str) -> Result<Series, String> {
    let out = etcdctl_command(b, endpoint)
        // The response's count is the whole range's, whatever the limit (etcdctl 3.4 has no
        // --count-only).
        .args([
            "get",
            "--prefix",
            &b.etcd_prefix,
            "--keys-only",
            "--limit=1",
            "-w",
            "json",
        ])
        .output()
        .map_err(|e| format!("{}: {e}", b.etcdctl))?;
    if !out.status.success() {
        return Err(format!(
            "etcdctl get --prefix --keys-only failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let items = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v["count"].as_u64())
        .unwrap_or(0);
    let mut samples = Vec::new();
    for i in 0..b.warmup + b.count {
        let start = Instant::now();
        let mut child = etcdctl_command(b, endpoint)
            .args(["get", "--prefix", &b.etcd_prefix])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", b.etcdctl))?;
        let mut stdout = child.stdout.take().ok_or("etcdctl: no stdout")?;
        let bytes = std::io::copy(&mut stdout, &mut std::io::sink())
            .map_err(|e| format!("reading etcdctl's output: {e}"))?;
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let total_s = start.elapsed().as_secs_f64();
        if !status.success() {
            return Err(format!("etcdctl get --prefix failed: {err}"));
        }
        if i < b.warmup {
            continue;
        }
        eprintln!(
            "listbench: etcdctl get --prefix {} {}/{}: {total_s:.3} s, {bytes} bytes",
            b.etcd_prefix,
            i + 1 - b.warmup,
            b.count
        );
        samples.push(Sample {
            headers_s: 0.0,
            total_s,
            bytes,
            items,
        });
    }
    Ok(Series::of(
        format!("etcdctl get --prefix {}", b.etcd_prefix),
        samples,
    ))
}

impl Report {
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut m = String::new();
        let _ = writeln!(
            m,
            "# listbench\n\nServer `{}`, {} sequential runs of each.\n",
            self.server, self.count
        );
        let _ = writeln!(
            m,
            "| what | items | MB | min s | median s | max s | headers s (median) | MB/s | ÷ etcdctl |"
        );
        let _ = writeln!(m, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        let base = self.etcdctl.as_ref().map(|e| e.median_s);
        for s in self.lists.iter().chain(self.etcdctl.iter()) {
            let ratio = match base {
                Some(b) if b > 0.0 => format!("{:.2}×", s.median_s / b),
                _ => "–".into(),
            };
            let _ = writeln!(
                m,
                "| {} | {} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {ratio} |",
                s.what,
                s.items,
                s.bytes as f64 / 1e6,
                s.min_s,
                s.median_s,
                s.max_s,
                s.median_headers_s,
                s.mb_per_s
            );
        }
        if self.etcdctl.is_some() {
            let _ = writeln!(
                m,
                "\n`÷ etcdctl` is the median time over etcdctl's median time (etcdctl's includes starting the process; its bytes are its text output: keys and values)."
            );
        }
        m
    }
}

/// Counts the elements of the top-level `"items"` array of a JSON list, fed in chunks: a scan of
/// strings and nesting only, no decode.
#[derive(Default)]
pub struct JsonItems {
    pub items: u64,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The top-level array being scanned is `items`.
    in_items: bool,
    /// The last string closed at depth 1 (a key or a value), when it was short.
    key: Vec<u8>,
    key_len: usize,
}

/// Longest depth-1 string remembered: enough for `items`.
const KEY_MAX: usize = 8;

impl JsonItems {
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut i = 0;
        while i < chunk.len() {
            if self.in_string {
                // Skip to the next quote or backslash.
                let rest = &chunk[i..];
                if self.escaped {
                    self.escaped = false;
                    self.note(rest[0]);
                    i += 1;
                    continue;
                }
                match rest.iter().position(|&c| c == b'"' || c == b'\\') {
                    None => {
                        if self.depth == 1 {
                            rest.iter().for_each(|&c| self.note(c));
                        }
                        return;
                    }
                    Some(p) => {
                        if self.depth == 1 {
                            rest[..p].iter().for_each(|&c| self.note(c));
                        }
                        if rest[p] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                        }
                        i += p + 1;
                    }
                }
                continue;
            }
            match chunk[i] {
                b'"' => {
                    self.in_string = true;
                    self.key.clear();
                    self.key_len = 0;
                }
                b'{' | b'[' => {
                    if chunk[i] == b'['
                        && self.depth == 1
                        && self.key_len == 5
                        && self.key == b"items"
                    {
                        self.in_items = true;
                    } else if chunk[i] == b'{' && self.depth == 2 && self.in_items {
                        self.items += 1;
                    }
                    self.depth += 1;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth <= 1 {
                        self.in_items = false;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn note(&mut self, c: u8) {
        if self.depth == 1 {
            self.key_len += 1;
            if self.key.len() < KEY_MAX {
                self.key.push(c);
            }
        }
    }
}

/// Counts the items of a Kubernetes protobuf list (`k8s\0` + runtime.Unknown whose `raw` (2) is
/// the List, whose `items` are field 2), fed in chunks: only tags and lengths are read.
#[derive(Default)]
pub struct ProtobufItems {
    pub items: u64,
    magic: [u8; 4],
    /// Bytes consumed so far.
    pos: u64,
    /// Where the List (the Unknown's raw bytes) ends, while inside it.
    list_end: Option<u64>,
    state: PbState,
    varint: u64,
    shift: u32,
    /// The field number and wire type of the tag being read, once its length is due.
    field: u64,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
enum PbState {
    #[default]
    Magic,
    Tag,
    /// A varint value (wire type 0), skipped.
    Value,
    Len,
    Skip(u64),
    /// Not a protobuf list: stop scanning.
    Bad,
}

impl ProtobufItems {
    pub fn magic_ok(&self) -> bool {
        &self.magic == b"k8s\0"
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let mut i = 0usize;
        while i < chunk.len() {
            if let Some(end) = self.list_end
                && self.pos >= end
                && self.state == PbState::Tag
            {
                self.list_end = None;
            }
            match self.state {
                PbState::Bad => return,
                PbState::Magic => {
                    self.magic[self.pos as usize] = chunk[i];
                    i += 1;
                    self.pos += 1;
                    if self.pos == 4 {
                        self.state = if self.magic_ok() {
                            PbState::Tag
                        } else {
                            PbState::Bad
                        };
                    }
                }
                PbState::Skip(n) => {
                    let take = n.min((chunk.len() - i) as u64);
                    i += take as usize;
                    self.pos += take;
                    self.state = if take == n {
                        PbState::Tag
                    } else {
                        PbState::Skip(n - take)
                    };
                }
                PbState::Tag | PbState::Value | PbState::Len => {
                    let c = chunk[i];
                    i += 1;
                    self.pos += 1;
                    if self.shift < 64 {
                        self.varint |= u64::from(c & 0x7f) << self.shift;
                    }
                    self.shift += 7;
                    if c & 0x80 != 0 {
                        continue;
                    }
                    let v = std::mem::take(&mut self.varint);
                    self.shift = 0;
                    self.state = match self.state {
                        PbState::Tag => match v & 7 {
                            0 => PbState::Value,
                            1 => PbState::Skip(8),
                            5 => PbState::Skip(4),
                            2 => {
                                self.field = v >> 3;
                                PbState::Len
                            }
                            _ => PbState::Bad,
                        },
                        PbState::Value => PbState::Tag,
                        _ => {
                            // A length: descend into the Unknown's raw (2), count the List's
                            // items (2), skip anything else.
                            if self.list_end.is_none() && self.field == 2 {
                                self.list_end = Some(self.pos + v);
                                PbState::Tag
                            } else {
                                if self.list_end.is_some() && self.field == 2 {
                                    self.items += 1;
                                }
                                if v == 0 {
                                    PbState::Tag
                                } else {
                                    PbState::Skip(v)
                                }
                            }
                        }
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_count(body: &[u8], chunk: usize) -> u64 {
        let mut c = JsonItems::default();
        for part in body.chunks(chunk) {
            c.feed(part);
        }
        c.items
    }

    #[test]
    fn json_items_are_counted_across_any_chunking() {
        let body = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5","items":[{"x":1}]},"items":[{"metadata":{"name":"a\"}{[","items":[{},{}]},"spec":{"c":[{"a":"]"}]}},{"metadata":{"name":"b\\"}},{}]}"#;
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(json_count(body, chunk), 3, "chunk {chunk}");
        }
        assert_eq!(json_count(br#"{"kind":"PodList","items":[]}"#, 4), 0);
        assert_eq!(json_count(br#"{"kind":"PodList","items":null}"#, 4), 0);
    }

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(n: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    #[test]
    fn protobuf_items_are_counted_across_any_chunking() {
        // A PodList: metadata (1), then items (2) of several sizes, one with a nested field 2.
        let mut list = Vec::new();
        field(1, b"\x0a\x015", &mut list);
        let mut nested = Vec::new();
        field(2, &[7u8; 300], &mut nested);
        for item in [vec![], vec![1u8; 5], nested, vec![9u8; 200]] {
            field(2, &item, &mut list);
        }
        let mut body = b"k8s\0".to_vec();
        field(1, b"\x0a\x02v1\x12\x07PodList", &mut body);
        field(2, &list, &mut body);
        // contentEncoding (3) and contentType (4), empty; a varint field for good measure.
        field(3, b"", &mut body);
        field(4, b"", &mut body);
        body.extend_from_slice(&[5 << 3, 0x96, 0x01]);
        for chunk in [1, 2, 3, 5, 64, 100_000] {
            let mut c = ProtobufItems::default();
            for part in body.chunks(chunk) {
                c.feed(part);
            }
            assert!(c.magic_ok());
            assert_eq!(c.items, 4, "chunk {chunk}");
        }
        let mut c = ProtobufItems::default();
        c.feed(b"{\"kind\":\"PodList\"}");
        assert!(!c.magic_ok());
    }
}
