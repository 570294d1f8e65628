//! Memory has a budget: no sequence of requests grows the server past its cache budgets. Its own
//! test binary (one test), so that the resident memory measured is this server's alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authhost_tests::{Options, TestServer};

/// Resident memory of this process in KiB, from `/proc`.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// 3,000 `authorize` calls from one user, each with a different 16 KiB service name, grow
/// resident memory by at most 48 MiB (they used to add over 200 MiB that stayed), and a normal
/// `authorize` still answers. Then 2,000 distinct names of allowed length against a 1 MiB
/// budget: the permission-token cache holds no more than its budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_service_floods_stay_within_the_budgets() {
    let s = TestServer::start_with(Options {
        extra_toml: "[caches]\npermission_tokens_mib = 1\n".into(),
        ..Options::default()
    })
    .await;
    let token = s.dev_login("flood@example.org", "Flood").await;
    let before = rss_kib();
    let long = "s".repeat(16 * 1024 - 8);
    let mut refused = 0;
    for i in 0..3_000u32 {
        let r = s
            .client
            .get(s.url(&format!("authorize?service={long}{i:08}")))
            .header("auth-token", &token)
            .send()
            .await
            .unwrap();
        if r.status() == 400 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("256"), "{body}");
            refused += 1;
        } else {
            assert_eq!(r.status(), 200);
        }
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib <= 48,
        "resident memory grew by {grown_mib} MiB after 3,000 distinct 16 KiB services"
    );
    assert_eq!(refused, 3_000, "over-long service names are refused");

    for i in 0..2_000u32 {
        let name = format!("{}{i:08}", "n".repeat(240));
        let r = s
            .client
            .get(s.url(&format!("authorize?service={name}")))
            .header("auth-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (permission_bytes, verified_bytes) = s.app.tokens.cache_bytes();
    assert!(
        permission_bytes > 0 && permission_bytes <= 1024 * 1024,
        "permission-token cache holds {permission_bytes} bytes, budget 1 MiB"
    );
    assert!(verified_bytes > 0);

    let normal = s
        .get_json(&format!("authorize?service=example&jwt={token}"))
        .await;
    assert!(normal["token"].is_string(), "{normal}");
    s.stop().await;
}
