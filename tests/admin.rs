//! `[server] admin_listen`: `/metrics`, `/healthz` and `/readyz` on a second
//! listener, and `/metrics` off the public one; without it, `/metrics` stays public.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use authhost::app::App;
use authhost::server::ServerHandle;
use authhost_tests::{Options, TestDb, test_config};
use serde_json::Value;

/// A server with `admin_listen` set (or not) through the environment, as an operator would.
async fn start(admin_listen: Option<&str>) -> (ServerHandle, reqwest::Client, TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path()).await;
    let mut options = Options::default();
    if let Some(listen) = admin_listen {
        options
            .env
            .insert("AUTHHOST_SERVER__ADMIN_LISTEN".into(), listen.into());
    }
    let config = test_config(dir.path(), &db.url, &options);
    let app = Arc::new(App::build(config).await.unwrap_or_else(|e| panic!("{e}")));
    let handle = ServerHandle::start(app, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // The SQLite file lives in `dir`: keep it until the process ends.
    std::mem::forget(dir);
    (handle, reqwest::Client::new(), db)
}

async fn get(client: &reqwest::Client, url: String) -> (u16, String, String) {
    let r = client.get(&url).send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, r.text().await.unwrap())
}

// One test, in order: the metrics recorder is shared by every server of this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listen_takes_metrics_off_the_public_listener() {
    let (server, client, db) = start(Some("127.0.0.1:0")).await;
    let public = format!("http://{}", server.addr);
    let admin = format!("http://{}", server.admin_addr.expect("admin address"));
    assert_ne!(server.admin_addr, Some(server.addr));

    // Public: no metrics (a JSON 404 like any unknown route); health and readiness stay.
    let (status, content_type, body) = get(&client, format!("{public}/metrics")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(content_type, "application/json");
    assert!(
        serde_json::from_str::<Value>(&body).unwrap()["error"].is_string(),
        "{body}"
    );
    assert_eq!(get(&client, format!("{public}/healthz")).await.0, 200);
    assert_eq!(get(&client, format!("{public}/readyz")).await.0, 200);

    // Admin: metrics, health, readiness; nothing else.
    let (status, content_type, metrics) = get(&client, format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    // The public requests above are counted, the refused /metrics as an unmatched route.
    assert!(
        metrics.contains("authhost_http_requests_total{route=\"/healthz\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("authhost_http_requests_total{route=\"unmatched\",status=\"404\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("route=\"/metrics\""), "{metrics}");
    let (status, _, body) = get(&client, format!("{admin}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "{\"status\":\"ok\"}"));
    let (status, _, body) = get(&client, format!("{admin}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ready"
    );
    let (status, content_type, _) = get(&client, format!("{admin}/auth/check")).await;
    assert_eq!((status, content_type.as_str()), (404, "application/json"));
    let r = client
        .post(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // The admin listener's answers carry the headers every answer carries.
    for path in ["/metrics", "/healthz", "/readyz", "/nowhere"] {
        let r = client.get(format!("{admin}{path}")).send().await.unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    server.shutdown().await;
    db.drop_database().await;

    // Without admin_listen, /metrics stays on the public listener.
    let (server, client, db) = start(None).await;
    assert_eq!(server.admin_addr, None);
    let (status, content_type, metrics) =
        get(&client, format!("http://{}/metrics", server.addr)).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(
        metrics.contains("authhost_http_requests_total"),
        "{metrics}"
    );
    server.shutdown().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_admin_listen_is_a_named_configuration_error() {
    let text = "[server]\nadmin_listen = \"localhost\"\n";
    let errors = authhost::config::Config::from_toml_str(text, &Default::default())
        .expect_err("invalid")
        .0;
    assert_eq!(errors[0].key, "server.admin_listen");
}
