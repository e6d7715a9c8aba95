//! `kapi decode` and `kapi encode`: convert an object between the forms etcd stores (protobuf
//! with the `k8s\0` envelope, or JSON) and JSON, YAML or protobuf, so an operator can read
//! and write etcd directly. Input form is detected from the bytes.

use std::io::{Read, Write};
use std::path::PathBuf;

use kapi_codec::envelope::{Envelope, PROTOBUF_MAGIC, write_envelope};
use kapi_codec::json_write::indent;
use kapi_codec::meta::set_resource_version;
use kapi_codec::to_json::envelope_to_json;
use kapi_codec::to_pb::json_to_envelope;
use kapi_codec::{CodecError, FieldValidation, Schema, yaml};

/// Largest input read: far above any object etcd accepts (1.5 MiB by default), small enough
/// that a stray pipe cannot exhaust memory.
const MAX_INPUT: u64 = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Yaml,
    Pb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Validation {
    Ignore,
    Warn,
    Strict,
}

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Output form.
    #[arg(long, value_enum)]
    pub to: Option<Format>,
    /// Input file; standard input when absent or `-`.
    pub file: Option<PathBuf>,
    /// Indent JSON output (as `?pretty=true` does); the default is the compact form
    /// upstream's API returns.
    #[arg(long)]
    pub pretty: bool,
    /// Set metadata.resourceVersion (etcd values carry none; the API reports the key's
    /// mod revision).
    #[arg(long)]
    pub resource_version: Option<String>,
    /// How unknown or duplicate fields in JSON/YAML input are treated.
    #[arg(long, value_enum, default_value = "warn")]
    pub validate: Validation,
    /// Decrypt a value encrypted at rest (`k8s:enc:...`) with the providers of this
    /// EncryptionConfiguration (kube-apiserver's --encryption-provider-config file).
    #[arg(long)]
    pub encryption_provider_config: Option<PathBuf>,
    /// The etcd key the value was read from (`/registry/secrets/default/s1`): picks the
    /// providers of its resource, and is the authenticated data aesgcm values are bound to.
    /// Without it every provider of the configuration is tried, with no authenticated data.
    #[arg(long)]
    pub etcd_key: Option<String>,
}

/// Runs a conversion; `default_to` is the output form when `--to` is absent.
pub fn run(args: &ConvertArgs, default_to: Format) -> Result<(), String> {
    let mut input = read_input(args.file.as_ref())?;
    if let Some(path) = &args.encryption_provider_config {
        input = decrypt(input, path, args.etcd_key.as_deref())?;
    }
    let to = args.to.unwrap_or(default_to);
    let out = convert(&input, to, args).map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("writing output: {e}"))
}

/// The plaintext of a value encrypted at rest; other values are returned as they are.
fn decrypt(input: Vec<u8>, config: &std::path::Path, key: Option<&str>) -> Result<Vec<u8>, String> {
    use crate::storage::encryption::{Encryption, config::load, open_with, providers};
    if !input.starts_with(providers::ENCRYPTED_PREFIX) {
        return Ok(input);
    }
    let (config, _) = load(config)?;
    type Open = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, String>>;
    let open: Open = match key {
        Some(key) => {
            // The etcd prefix is the key's first segment (`/registry/`).
            let first = key
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default();
            let registry = crate::api::registry::Registry::builtin();
            let e = Encryption::new(
                config,
                crate::serve::storage_layout(&registry),
                &format!("/{first}/"),
            );
            let key = key.to_string();
            Box::new(move |v| {
                // A KMS provider's read may call its plugin, on the plugin runtime.
                futures::executor::block_on(
                    e.open(key.as_bytes(), bytes::Bytes::copy_from_slice(v)),
                )
                .map(|b| b.to_vec())
            })
        }
        None => Box::new(move |v| {
            config
                .providers()
                .find_map(|p| futures::executor::block_on(open_with(&vec![p.clone()], b"", v)).ok())
                .ok_or_else(|| {
                    "no provider of the configuration could read the value (for aesgcm, \
                     give --etcd-key: the key is its authenticated data)"
                        .to_string()
                })
        }),
    };
    // `etcdctl get --print-value-only` ends the value with a newline of its own.
    open(&input).or_else(|e| match input.strip_suffix(b"\n") {
        Some(trimmed) => open(trimmed).map_err(|_| e),
        None => Err(e),
    })
}

fn read_input(file: Option<&PathBuf>) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let res = match file {
        Some(p) if p.as_os_str() != "-" => std::fs::File::open(p)
            .and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut buf))
            .map_err(|e| format!("reading {}: {e}", p.display())),
        _ => std::io::stdin()
            .lock()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut buf)
            .map_err(|e| format!("reading standard input: {e}")),
    };
    res?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(format!("input larger than {MAX_INPUT} bytes"));
    }
    Ok(buf)
}

/// The input as a protobuf envelope, or as JSON text.
enum Input {
    Pb(Vec<u8>),
    Json(Vec<u8>),
}

fn detect(input: &[u8]) -> Result<Input, CodecError> {
    if input.starts_with(PROTOBUF_MAGIC) {
        // `etcdctl get --print-value-only` ends the value with a newline of its own.
        return match Envelope::parse(input) {
            Ok(_) => Ok(Input::Pb(input.to_vec())),
            Err(e) => match input.strip_suffix(b"\n") {
                Some(trimmed) if Envelope::parse(trimmed).is_ok() => {
                    Ok(Input::Pb(trimmed.to_vec()))
                }
                _ => Err(e),
            },
        };
    }
    if input.starts_with(b"k8s:enc:") {
        return Err(CodecError::malformed(
            "the value is encrypted at rest (k8s:enc: prefix); decrypt it first",
        ));
    }
    let first = input.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return Ok(Input::Json(input.to_vec()));
    }
    let value = yaml::from_yaml(input).map_err(|e| {
        CodecError::malformed(format!(
            "input is neither protobuf (k8s\\0), JSON nor YAML: yaml: line {}: {}",
            e.line, e.message
        ))
    })?;
    if !value.is_object() {
        return Err(CodecError::malformed("input is not an object"));
    }
    Ok(Input::Json(
        serde_json::to_vec(&value).map_err(|e| CodecError::malformed(e.to_string()))?,
    ))
}

fn validation(v: Validation) -> FieldValidation {
    match v {
        Validation::Ignore => FieldValidation::Ignore,
        Validation::Warn => FieldValidation::Warn,
        Validation::Strict => FieldValidation::Strict,
    }
}

pub fn convert(input: &[u8], to: Format, args: &ConvertArgs) -> Result<Vec<u8>, CodecError> {
    // Normalize to the protobuf envelope when the kind has one; JSON-only kinds (custom
    // resources, CRDs and APIServices as stored) stay JSON.
    let pb = match detect(input)? {
        Input::Pb(pb) => Some(pb),
        Input::Json(json) => {
            let doc = kapi_codec::json_read::Doc::parse(&json)?;
            let (api_version, kind) = kapi_codec::to_pb::type_meta(&doc)?;
            if Schema::get().kind(&api_version, &kind).is_some() {
                let mut pb = Vec::new();
                let decoded = json_to_envelope(&json, None, validation(args.validate), &mut pb)?;
                for w in decoded.warnings {
                    eprintln!("Warning: {w}");
                }
                Some(pb)
            } else if to == Format::Pb {
                return Err(kapi_codec::CodecError::new(
                    kapi_codec::ErrorKind::UnknownKind,
                    format!(
                        "no built-in kind {kind:?} in version {api_version:?}: it has no protobuf form"
                    ),
                ));
            } else {
                return json_out(&json, args.resource_version.as_deref(), to, args.pretty);
            }
        }
    };
    let mut pb = pb.unwrap_or_default();
    if let Some(rv) = &args.resource_version {
        let env = Envelope::parse(&pb)?;
        let id = Schema::get()
            .kind(env.api_version, env.kind)
            .ok_or_else(|| CodecError::malformed(format!("unknown kind {}", env.kind)))?;
        let mut raw = Vec::new();
        set_resource_version(id, env.raw, rv, &mut raw)?;
        let mut re = Vec::new();
        write_envelope(env.api_version, env.kind, &raw, &mut re);
        pb = re;
    }
    if to == Format::Pb {
        return Ok(pb);
    }
    let mut json = Vec::new();
    envelope_to_json(&pb, &mut json)?;
    json_out(&json, None, to, args.pretty)
}

/// Writes JSON-form output; `rv` sets metadata.resourceVersion of a JSON-only object.
fn json_out(
    json: &[u8],
    rv: Option<&str>,
    to: Format,
    pretty: bool,
) -> Result<Vec<u8>, CodecError> {
    let owned;
    let mut json = json;
    if let Some(rv) = rv {
        let mut v: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| CodecError::malformed(e.to_string()))?;
        if let Some(obj) = v.as_object_mut() {
            let meta = obj
                .entry("metadata")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(m) = meta.as_object_mut() {
                m.insert("resourceVersion".into(), rv.into());
            }
        }
        owned = serde_json::to_vec(&v).map_err(|e| CodecError::malformed(e.to_string()))?;
        json = &owned;
    }
    match to {
        Format::Yaml => {
            let v: serde_json::Value =
                serde_json::from_slice(json).map_err(|e| CodecError::malformed(e.to_string()))?;
            Ok(yaml::to_yaml(&v).into_bytes())
        }
        _ if pretty => {
            let mut out = Vec::with_capacity(json.len() * 2);
            // Re-parse to compact first: JSON-only input may carry any whitespace.
            let doc = kapi_codec::json_read::Doc::parse(json)?;
            let mut compact = Vec::with_capacity(json.len());
            doc.write_compact(0, &mut compact);
            indent(&compact, &mut out);
            out.push(b'\n');
            Ok(out)
        }
        _ => {
            let doc = kapi_codec::json_read::Doc::parse(json)?;
            let mut compact = Vec::with_capacity(json.len() + 1);
            doc.write_compact(0, &mut compact);
            compact.push(b'\n');
            Ok(compact)
        }
    }
}
