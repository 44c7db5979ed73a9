//! The name this source reads under in the consumer group.

/// `hostname-pid-random`: unique per process, and per source within one process.
pub(super) fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "factory".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_unique_and_name_the_process() {
        let (one, two) = (consumer_name(), consumer_name());
        assert_ne!(one, two);
        assert!(one.contains(&format!("-{}-", std::process::id())), "{one}");
    }
}
