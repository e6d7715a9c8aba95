//! TEMPORARY STUB (replaced by the scalars branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarError(pub String);
pub fn canonical_quantity(s: &str, out: &mut Vec<u8>) -> Result<(), ScalarError> {
    out.extend_from_slice(s.as_bytes());
    Ok(())
}
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
pub fn format_time(secs: i64, out: &mut Vec<u8>) {
    let (y, m, d) = civil(secs.div_euclid(86400));
    let s = secs.rem_euclid(86400);
    out.extend_from_slice(
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            s / 3600,
            s % 3600 / 60,
            s % 60
        )
        .as_bytes(),
    );
}
pub fn format_micro_time(secs: i64, nanos: u32, out: &mut Vec<u8>) {
    let (y, m, d) = civil(secs.div_euclid(86400));
    let s = secs.rem_euclid(86400);
    out.extend_from_slice(
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
            s / 3600,
            s % 3600 / 60,
            s % 60,
            nanos / 1000
        )
        .as_bytes(),
    );
}
pub fn parse_rfc3339(s: &str) -> Result<(i64, u32), ScalarError> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(ScalarError("bad".into()));
    }
    let n = |a: usize, l: usize| {
        s[a..a + l]
            .parse::<i64>()
            .map_err(|_| ScalarError("bad".into()))
    };
    let (y, mo, d, h, mi, se) = (
        n(0, 4)?,
        n(5, 2)?,
        n(8, 2)?,
        n(11, 2)?,
        n(14, 2)?,
        n(17, 2)?,
    );
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let mut nanos = 0u32;
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[st..i];
        let mut f = format!("{frac:0<9}");
        f.truncate(9);
        nanos = f.parse().unwrap_or(0);
    }
    Ok((days * 86400 + h * 3600 + mi * 60 + se, nanos))
}
pub fn parse_duration(s: &str) -> Result<i64, ScalarError> {
    let _ = s;
    Ok(0)
}
pub fn format_duration(nanos: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{}s", nanos / 1_000_000_000).as_bytes());
}
pub fn format_go_float64(f: f64, out: &mut Vec<u8>) -> Result<(), ScalarError> {
    out.extend_from_slice(format!("{f}").as_bytes());
    Ok(())
}
pub fn format_go_float32(f: f32, out: &mut Vec<u8>) -> Result<(), ScalarError> {
    out.extend_from_slice(format!("{f}").as_bytes());
    Ok(())
}
