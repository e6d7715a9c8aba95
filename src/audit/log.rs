//! The log backend's file: events appended one per line, rotated as upstream's lumberjack
//! logger rotates it. Past `--audit-log-maxsize` megabytes (100 when 0, lumberjack's default)
//! the file is renamed `<name>-<UTC time 2006-01-02T15-04-05.000><.ext>` and a new one opened;
//! then backups past `--audit-log-maxbackup` (newest kept; 0 = all) or older than
//! `--audit-log-maxage` days (0 = any age) are removed. `-` writes to standard output.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// lumberjack's size limit when none is given.
const DEFAULT_MAX_MEGABYTES: u64 = 100;
const MEGABYTE: u64 = 1024 * 1024;

pub struct Rotation {
    pub max_megabytes: u64,
    pub max_backups: usize,
    pub max_age_days: u64,
}

pub enum Sink {
    Stdout,
    File(RotatingFile),
}

impl Sink {
    pub fn open(path: &str, rotation: Rotation) -> std::io::Result<Sink> {
        if path == "-" {
            return Ok(Sink::Stdout);
        }
        RotatingFile::open(PathBuf::from(path), rotation).map(Sink::File)
    }

    /// Writes one or more whole lines.
    pub fn write_lines(&mut self, lines: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(lines)?;
                out.flush()
            }
            Sink::File(f) => f.write(lines),
        }
    }
}

pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
}

impl RotatingFile {
    fn open(path: PathBuf, rotation: Rotation) -> std::io::Result<RotatingFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path,
            file,
            size,
            rotation,
        })
    }

    fn max_bytes(&self) -> u64 {
        match self.rotation.max_megabytes {
            0 => DEFAULT_MAX_MEGABYTES * MEGABYTE,
            mb => mb.saturating_mul(MEGABYTE),
        }
    }

    fn write(&mut self, lines: &[u8]) -> std::io::Result<()> {
        let len = lines.len() as u64;
        if len > self.max_bytes() {
            return Err(std::io::Error::other(format!(
                "write length {len} exceeds maximum file size {}",
                self.max_bytes()
            )));
        }
        if self.size + len > self.max_bytes() {
            self.rotate()?;
        }
        self.file.write_all(lines)?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let backup = backup_name(&self.path, SystemTime::now());
        std::fs::rename(&self.path, &backup)?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        self.remove_old_backups();
        Ok(())
    }

    /// Removes backups past the count and age limits (lumberjack's mill). Failures are left
    /// for the next rotation.
    fn remove_old_backups(&self) {
        let (prefix, ext) = name_parts(&self.path);
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut backups: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stamp = name
                    .strip_prefix(&format!("{prefix}-"))?
                    .strip_suffix(&ext)?;
                // 2006-01-02T15-04-05.000
                (stamp.len() == 23 && stamp.as_bytes()[10] == b'T')
                    .then(|| (stamp.to_string(), e.path()))
            })
            .collect();
        // Newest first: the timestamp sorts as text.
        backups.sort_by(|a, b| b.0.cmp(&a.0));
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let max_age = self.rotation.max_age_days.saturating_mul(86_400) as i64;
        for (i, (stamp, path)) in backups.iter().enumerate() {
            let too_many = self.rotation.max_backups > 0 && i >= self.rotation.max_backups;
            // Age from the time in the name, as lumberjack reads it.
            let too_old = self.rotation.max_age_days > 0
                && stamp_seconds(stamp).is_some_and(|t| now.saturating_sub(t) > max_age);
            if too_many || too_old {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Seconds since the epoch of a backup's `2006-01-02T15-04-05.000` (UTC).
fn stamp_seconds(stamp: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// `audit.log` → (`audit`, `.log`).
fn name_parts(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rfind('.') {
        Some(dot) if dot > 0 => (name[..dot].to_string(), name[dot..].to_string()),
        _ => (name, String::new()),
    }
}

/// `<dir>/audit.log` at `time` → `<dir>/audit-2026-12-01T18-30-43.123.log` (UTC).
fn backup_name(path: &Path, time: SystemTime) -> PathBuf {
    let (prefix, ext) = name_parts(path);
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut stamp = Vec::new();
    kapi_codec::goscalar::format_time(since.as_secs() as i64, &mut stamp);
    let stamp = String::from_utf8_lossy(&stamp)
        .trim_end_matches('Z')
        .replace(':', "-");
    let name = format!("{prefix}-{stamp}.{:03}{ext}", since.subsec_millis());
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backups_are_named_as_lumberjack_names_them() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_613_843_123);
        assert_eq!(
            backup_name(Path::new("/var/log/audit.log"), t),
            PathBuf::from("/var/log/audit-2025-12-01T18-30-43.123.log")
        );
    }

    #[test]
    fn backup_times_are_read_from_their_names() {
        assert_eq!(
            stamp_seconds("2025-12-01T18-30-43.123"),
            Some(1_764_613_843)
        );
        assert_eq!(stamp_seconds("1970-01-01T00-00-00.000"), Some(0));
        assert_eq!(stamp_seconds("garbage"), None);
    }

    #[test]
    fn backups_older_than_max_age_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let old = dir.path().join("audit-2001-01-01T00-00-00.000.log");
        std::fs::write(&old, "x").unwrap();
        let mut f = RotatingFile::open(
            path,
            Rotation {
                max_megabytes: 1,
                max_backups: 0,
                max_age_days: 30,
            },
        )
        .unwrap();
        f.write(&vec![b'x'; 700 * 1024]).unwrap();
        f.write(&vec![b'x'; 700 * 1024]).unwrap();
        assert!(!old.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn rotation_keeps_max_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut f = RotatingFile::open(
            path.clone(),
            Rotation {
                max_megabytes: 1,
                max_backups: 2,
                max_age_days: 0,
            },
        )
        .unwrap();
        let line = vec![b'x'; 400 * 1024];
        for _ in 0..12 {
            f.write(&line).unwrap();
            // Backup names have millisecond resolution.
            std::thread::sleep(Duration::from_millis(2));
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&"audit.log".to_string()));
        assert!(std::fs::metadata(&path).unwrap().len() <= MEGABYTE);
    }
}
