//! The ACL file: one `user <name> <rule> ...` line per user, the format ACL LIST prints and Redis's
//! `aclfile` uses. Read all or nothing; written to a new file renamed over the old one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::user::User;

pub fn read(path: &Path) -> Result<BTreeMap<String, Arc<User>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("Error loading ACLs, opening file '{}': {e}", path.display()))?;
    let mut users = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = |why: &str| format!("{}:{}: {why}", path.display(), n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("user") {
            return Err(at("line should start with user keyword"));
        }
        let name = words.next().ok_or_else(|| at("user name missing"))?;
        if users.contains_key(name) {
            return Err(at("Duplicate user found. A user can only be defined once in config files"));
        }
        let mut user = User::new(name);
        for rule in words {
            user.apply(rule.as_bytes()).map_err(|e| at(&format!("{e}. Error in user declaration '{name}'")))?;
        }
        users.insert(name.to_owned(), Arc::new(user));
    }
    users.entry("default".to_owned()).or_insert_with(|| Arc::new(User::default_user()));
    Ok(users)
}

pub fn write(path: &Path, lines: &[String]) -> Result<(), String> {
    let tmp = path.with_extension("tmp-save");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("There was an error trying to save the ACLs. Please check the server logs for more information: {e}"))
}
