//! ACL rules (`ACL SETUSER`, the ACL file) on arbitrary words: no panic, and what `ACL LIST` writes reads
//! back as a user described the same way.
#![no_main]

use herald_broker::acl::user::User;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut user = User::new("u");
    for rule in data.split(|&b| b == b' ').filter(|r| !r.is_empty()) {
        let _ = user.apply(rule);
    }
    let line = user.describe();
    let mut back = User::new("u");
    for word in line.split(' ').skip(2) {
        if let Err(e) = back.apply(word.as_bytes()) {
            panic!("{word}: {e} in {line}");
        }
    }
    assert_eq!(back.describe(), line);
});
