//! The engine boundary, checked: `broker/src/engine/` imports nothing from above it (the server,
//! dispatch, the state composition, event rendering, pub-sub, configuration or the broker root) and
//! nothing of the protocol crate but its number rules (`number`, `long_double`: how Redis parses and
//! prints numbers, which the engines' string operations must follow) and its stream ID rules
//! (`stream_id`: how Redis parses and orders `<ms>-<seq>` IDs, which the command parser needs for the
//! IDs Redis reads before the key and the stream engine for those it reads after). Time, randomness,
//! settings and the sink for changes are passed in. See docs/architecture.md.

use std::path::Path;

const ABOVE: &[&str] = &[
    "crate::server",
    "crate::dispatch",
    "crate::state",
    "crate::events",
    "crate::consumers",
    "crate::pubsub",
    "crate::config",
    "crate::broker",
    "crate::clock",
    "herald_broker::",
];
const PROTOCOL_ALLOWED: &[&str] = &["herald_protocol::number", "herald_protocol::long_double", "herald_protocol::stream_id"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("engine directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn engines_import_nothing_from_above() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine"), &mut files);
    assert!(files.len() > 10, "found the engine sources");
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let above = ABOVE.iter().any(|p| code.contains(p));
            let protocol = code.contains("herald_protocol") && !PROTOCOL_ALLOWED.iter().any(|p| code.contains(p));
            if above || protocol {
                offences.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(offences.is_empty(), "engine/ reaches above its boundary:\n{}", offences.join("\n"));
}
