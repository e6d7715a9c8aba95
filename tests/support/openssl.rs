//! Certificates made with the openssl command line, as guides make them (`req -x509` for a CA,
//! `x509 -req` to sign, v1 certificates unless an extension file is given).

use std::path::Path;
use std::process::Command;

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA: `<name>.crt`, `<name>.key` in `dir`.
pub fn make_ca(dir: &Path, name: &str) {
    let subject = format!("/CN={name}");
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject,
            "-keyout", &key, "-out", &crt,
        ],
    );
}

/// A key and a certificate for `subject` signed by `ca_crt`/`ca_key` (`<name>.crt`,
/// `<name>.key`); with `ext`, that extension file's extensions, else a v1 certificate.
pub fn sign(
    dir: &Path,
    name: &str,
    subject: &str,
    ca_crt: &Path,
    ca_key: &Path,
    ext: Option<&str>,
) {
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key, "-out", &csr,
        ],
    );
    let (ca_crt, ca_key) = (ca_crt.display().to_string(), ca_key.display().to_string());
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_crt,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        &crt,
    ];
    if let Some(ext) = ext {
        args.extend(["-extfile", ext]);
    }
    openssl(dir, &args);
}
