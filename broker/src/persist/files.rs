//! The data directory: a manifest naming the current snapshot and logs, and the files it names.
//!
//! ```text
//! DIR/MANIFEST              herald-manifest 1 / generation N / snapshot snapshot-N.hsnap / log log-N.hlog ...
//! DIR/snapshot-N.hsnap      everything as of the rewrite that made generation N
//! DIR/log-N.hlog            changes since (while a rewrite runs, the manifest lists two logs)
//! ```
//!
//! The manifest is replaced atomically (written beside, fsynced, renamed, directory fsynced), so a
//! crash at any moment leaves either the old or the new one: recovery never sees half a switch.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::codec;

pub(super) const MANIFEST: &str = "MANIFEST";
const MANIFEST_HEADER: &str = "herald-manifest 1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub generation: u64,
    pub snapshot: Option<String>,
    /// Logs to replay after the snapshot, oldest first; new records go to the last.
    pub logs: Vec<String>,
}

impl Manifest {
    pub fn snapshot_name(generation: u64) -> String {
        format!("snapshot-{generation}.hsnap")
    }

    pub fn log_name(generation: u64) -> String {
        format!("log-{generation}.hlog")
    }

    /// Reads the manifest of `dir`; `Ok(None)` for a directory that has none yet.
    pub fn read(dir: &Path) -> Result<Option<Manifest>, String> {
        let path = dir.join(MANIFEST);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let bad = |why: &str| format!("{} is not a valid manifest: {why}", path.display());
        let mut lines = text.lines();
        if lines.next() != Some(MANIFEST_HEADER) {
            return Err(bad("unknown header (written by another version of Herald?)"));
        }
        let mut manifest = Manifest { generation: 0, snapshot: None, logs: Vec::new() };
        for line in lines.filter(|l| !l.trim().is_empty()) {
            match line.split_once(' ') {
                Some(("generation", n)) => manifest.generation = n.parse().map_err(|_| bad("bad generation"))?,
                Some(("snapshot", name)) => manifest.snapshot = Some(checked_name(name).ok_or_else(|| bad("bad file name"))?),
                Some(("log", name)) => manifest.logs.push(checked_name(name).ok_or_else(|| bad("bad file name"))?),
                _ => return Err(bad(&format!("unknown line '{line}'"))),
            }
        }
        if manifest.logs.is_empty() {
            return Err(bad("no log"));
        }
        Ok(Some(manifest))
    }

    /// Replaces the manifest atomically.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut text = format!("{MANIFEST_HEADER}\ngeneration {}\n", self.generation);
        if let Some(s) = &self.snapshot {
            text.push_str(&format!("snapshot {s}\n"));
        }
        for l in &self.logs {
            text.push_str(&format!("log {l}\n"));
        }
        let tmp = dir.join("MANIFEST.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(MANIFEST))?;
        sync_dir(dir)
    }
}

/// The generation in a file name (`log-7.hlog` -> 7).
pub fn generation_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".hlog").or_else(|| name.strip_suffix(".hsnap"))?;
    stem.rsplit('-').next()?.parse().ok()
}

/// A file name from the manifest, refused if it could point outside the directory.
fn checked_name(name: &str) -> Option<String> {
    let ok = !name.is_empty() && !name.contains('/') && !name.contains('\\') && name != "." && name != "..";
    ok.then(|| name.to_owned())
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates a new, empty log (header only, fsynced) and opens it for appending.
pub fn create_log(dir: &Path, name: &str) -> std::io::Result<File> {
    let path = dir.join(name);
    let mut f = OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
    f.write_all(&codec::header(codec::LOG_MAGIC))?;
    f.sync_all()?;
    sync_dir(dir)?;
    OpenOptions::new().append(true).open(&path)
}

/// Opens an existing log for appending.
pub fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

/// Removes files of the directory that no manifest names any more (an interrupted rewrite's
/// leftovers, or what a finished one replaced).
pub fn remove_unlisted(dir: &Path, manifest: &Manifest) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(".hlog") || name.ends_with(".hsnap") || name.ends_with(".hsnap.tmp");
        let listed = manifest.snapshot.as_deref() == Some(name.as_str()) || manifest.logs.contains(&name);
        if ours
            && !listed
            && let Err(e) = fs::remove_file(entry.path())
        {
            tracing::warn!("persistence: could not remove {}: {e}", entry.path().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_refusals() {
        let dir = std::env::temp_dir().join(format!("herald-manifest-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(Manifest::read(&dir).unwrap(), None);
        let m = Manifest {
            generation: 3,
            snapshot: Some(Manifest::snapshot_name(3)),
            logs: vec![Manifest::log_name(3), Manifest::log_name(4)],
        };
        m.write(&dir).unwrap();
        assert_eq!(Manifest::read(&dir).unwrap(), Some(m));
        fs::write(dir.join(MANIFEST), "herald-manifest 1\ngeneration 1\nlog ../etc/passwd\n").unwrap();
        assert!(Manifest::read(&dir).unwrap_err().contains("bad file name"));
        fs::write(dir.join(MANIFEST), "herald-manifest 9\n").unwrap();
        assert!(Manifest::read(&dir).unwrap_err().contains("another version"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
