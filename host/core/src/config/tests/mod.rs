//! Tests of the configuration: layers, errors, bounds, words, redaction.

use super::*;

mod clients;
mod typed_strings;

/// Every key in `keys` is named by one of `errs`.
pub(super) fn assert_errors_name(errs: &[ConfigError], keys: &[&str]) {
    let named: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    for k in keys {
        assert!(named.contains(k), "{k} missing from {named:?}");
    }
}

pub(super) fn env(pairs: &[(&str, &str)]) -> EnvMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn layers_override_in_order() {
    let toml = "[server]\nlisten = \"127.0.0.1:9000\"\nexternal_address = \"http://a.example\"\n";
    let c = Config::from_toml_str(toml, &env(&[])).expect("valid");
    assert_eq!(c.server.listen, "127.0.0.1:9000");
    let c = Config::from_toml_str(
        toml,
        &env(&[
            ("AUTHHOST_SERVER__LISTEN", "127.0.0.1:9001"),
            ("AUTHHOST_SERVER__EXTERNAL_ADDRESS", "http://b.example"),
            ("EXTERNAL_ADDRESS", "auth.example.org"),
            ("AUTHHOST_TOKENS__USER_TOKEN_DAYS", "3"),
            ("AUTHHOST_TOKENS__LEGACY_USER_TOKENS", "true"),
            ("AUTHHOST_REDIRECTS__ALLOWED", "[\"https://x.example/\"]"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.server.listen, "127.0.0.1:9001");
    assert_eq!(c.server.external_address, "https://auth.example.org");
    assert_eq!(c.tokens.user_token_days, 3);
    assert!(c.tokens.legacy_user_tokens);
    assert_eq!(c.redirects.allowed, vec!["https://x.example/".to_string()]);
}

#[test]
fn numeric_secrets_stay_strings() {
    let c = Config::from_toml_str(
        "",
        &env(&[("GITHUB_KEY", "12345"), ("GITHUB_SECRET", "67890")]),
    )
    .expect("valid");
    let gh = &c.providers["github"];
    assert_eq!(gh.client_id, "12345");
    assert_eq!(gh.client_secret.expose(), "67890");
    assert!(!c.to_redacted_toml().contains("67890"));
}

#[test]
fn every_error_is_reported_with_its_key() {
    let toml = r#"
        [server]
        listen = "nope"
        external_address = "ftp://x"
        [tokens]
        issuer = "https://auth.example.org/auth/?x=1"
        user_token_days = 0
        user_token_algorithm = "none"
        [plugins]
        services = "a:x;a:y"
    "#;
    let errs = Config::from_toml_str(toml, &env(&[]))
        .expect_err("invalid")
        .0;
    assert_errors_name(
        &errs,
        &[
            "server.listen",
            "server.external_address",
            "tokens.issuer",
            "tokens.user_token_days",
            "tokens.user_token_algorithm",
            "plugins.services",
        ],
    );
}

#[test]
fn type_errors_name_the_key() {
    let errs = Config::from_toml_str("[tokens]\nuser_token_days = \"many\"\n", &env(&[]))
        .expect_err("invalid")
        .0;
    assert_eq!(errs[0].key, "tokens.user_token_days");
    let errs = Config::from_toml_str("[server]\nlisen = \"x\"\n", &env(&[]))
        .expect_err("invalid")
        .0;
    assert!(errs[0].to_string().contains("lisen"), "{}", errs[0]);
}

fn error_keys(toml: &str, env_pairs: &[(&str, &str)]) -> Vec<String> {
    Config::from_toml_str(toml, &env(env_pairs))
        .expect_err("invalid")
        .0
        .into_iter()
        .map(|e| e.key)
        .collect()
}

#[test]
fn out_of_range_durations_and_sizes_are_named_errors() {
    // Values like these used to panic inside the cache crate at start.
    let toml = r#"
        [server]
        shutdown_grace_seconds = 86400
        max_connections = 2000000
        max_connections_per_client = 0
        idle_timeout_ms = 99
        [database]
        user_cache_ms = 9000000000000000000
        max_connections = 0
        [tokens]
        user_token_days = 3651
        permission_token_seconds = 9000000000000000000
        [plugins]
        call_timeout_ms = 600001
        [providers.corp]
        issuer = "https://idp.example"
        client_id = "x"
        client_secret = "y"
        timeout_ms = 0
    "#;
    let errs = Config::from_toml_str(toml, &env(&[]))
        .expect_err("invalid")
        .0;
    assert_errors_name(
        &errs,
        &[
            "server.shutdown_grace_seconds",
            "server.max_connections",
            "server.max_connections_per_client",
            "server.idle_timeout_ms",
            "database.user_cache_ms",
            "database.max_connections",
            "tokens.user_token_days",
            "tokens.permission_token_seconds",
            "plugins.call_timeout_ms",
            "providers.corp.timeout_ms",
        ],
    );
    let pts = errs
        .iter()
        .find(|e| e.key == "tokens.permission_token_seconds")
        .expect("error");
    assert!(pts.message.contains("31536000"), "{pts}");
    // The same through the environment.
    let mut keys = error_keys(
        "",
        &[
            ("AUTHHOST_DATABASE__USER_CACHE_MS", "3600001"),
            ("AUTHHOST_TOKENS__PERMISSION_TOKEN_SECONDS", "31536001"),
        ],
    );
    keys.sort();
    assert_eq!(
        keys,
        ["database.user_cache_ms", "tokens.permission_token_seconds"]
    );
    // The bounds themselves are fine.
    let c = Config::from_toml_str(
        "[database]\nuser_cache_ms = 3600000\n[tokens]\nuser_token_days = 3650\n\
         permission_token_seconds = 31536000\n[plugins]\ncall_timeout_ms = 600000\n\
         [server]\nshutdown_grace_seconds = 3600\nmax_connections = 1000000\n",
        &env(&[]),
    )
    .expect("valid");
    assert_eq!(c.tokens.permission_token_seconds, 31_536_000);
}

#[test]
fn words_are_typed_and_a_typo_is_a_named_error_among_the_others() {
    let toml = r#"
        [server]
        listen = "nope"
        log_format = "JSON"
        [tokens]
        user_token_algorithm = "RS265"
        [providers.corp]
        kind = "oauth"
        client_id = "x"
        client_secret = "y"
        [providers.google]
        client_auth = "client_secret_jwt"
        client_id = "x"
        client_secret = "y"
        [providers.github]
        client_auth = "client_secret_basic"
        client_id = "x"
        client_secret = "y"
    "#;
    let errs = Config::from_toml_str(toml, &env(&[]))
        .expect_err("invalid")
        .0;
    assert_errors_name(
        &errs,
        &[
            "server.listen",
            "server.log_format",
            "tokens.user_token_algorithm",
            "providers.corp.kind",
            "providers.google.client_auth",
            "providers.github.client_auth",
        ],
    );
    let alg = errs
        .iter()
        .find(|e| e.key == "tokens.user_token_algorithm")
        .expect("error");
    assert_eq!(alg.message, "`RS265` is not one of: HS256, RS256");

    let c = Config::from_toml_str(
        "[server]\nlog_format = \"json\"\n[providers.corp]\nkind = \"oidc\"\n\
         issuer = \"https://idp.example\"\nclient_id = \"x\"\nclient_secret = \"y\"\n\
         client_auth = \"client_secret_post\"\n[providers.gh2]\nkind = \"github\"\n",
        &env(&[("AUTHHOST_TOKENS__USER_TOKEN_ALGORITHM", "RS256")]),
    )
    .expect("valid");
    assert_eq!(c.tokens.user_token_algorithm, UserTokenAlgorithm::Rs256);
    assert_eq!(c.server.log_format, LogFormat::Json);
    let corp = &c.providers["corp"];
    assert_eq!(corp.kind_for("corp"), ProviderKind::Oidc);
    assert_eq!(corp.client_auth, Some(ClientAuth::ClientSecretPost));
    assert_eq!(c.providers["gh2"].kind_for("gh2"), ProviderKind::GitHub);
    assert_eq!(
        ProviderConfig::default().kind_for("google"),
        ProviderKind::Google
    );
    let mut keys = error_keys(
        "",
        &[
            ("AUTHHOST_TOKENS__USER_TOKEN_ALGORITHM", "rs256"),
            ("AUTHHOST_SERVER__LOG_FORMAT", "yaml"),
        ],
    );
    keys.sort();
    assert_eq!(keys, ["server.log_format", "tokens.user_token_algorithm"]);
    // A value of the wrong type is still a type error naming the key.
    let keys = error_keys("[tokens]\nuser_token_algorithm = 256\n", &[]);
    assert_eq!(keys, ["tokens.user_token_algorithm"]);
    // The words come back out as written.
    let text = c.to_redacted_toml();
    assert!(text.contains("user_token_algorithm = \"RS256\""), "{text}");
    assert!(text.contains("log_format = \"json\""), "{text}");
    assert!(
        text.contains("client_auth = \"client_secret_post\""),
        "{text}"
    );
}

#[test]
fn plugin_settings_that_look_secret_are_redacted() {
    let toml = r#"
        [plugins.config.perms]
        default = { read = true }
        api_key = "k-1111"
        url = "https://perms.example"
        [plugins.config.perms.upstream]
        ClientSecret = "s-2222"
        db_PASSWORD = 12345
        timeout_ms = 500
        [[plugins.config.perms.rules]]
        user = "a"
        Token = "t-3333"
        [[plugins.config.perms.rules]]
        user = "b"
        keys = ["k-4444", "k-5555"]
        [plugins.config.other]
        refresh_token = { value = "t-6666" }
        store = "postgres://app:pw-7777@db.example/perms"
        db_passwd = "p-8888"
        aws_credentials = "c-9999"
    "#;
    let c = Config::from_toml_str(toml, &env(&[])).expect("valid");
    let text = c.to_redacted_toml();
    for secret in [
        "k-1111", "s-2222", "12345", "t-3333", "k-4444", "k-5555", "t-6666", "pw-7777", "p-8888",
        "c-9999",
    ] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    for kept in [
        "https://perms.example",
        "db.example/perms",
        "timeout_ms = 500",
        "user = \"b\"",
        "read = true",
    ] {
        assert!(text.contains(kept), "{kept} missing:\n{text}");
    }
    // The redacted text is still valid TOML with the same shape.
    let back: toml::Table = toml::from_str(&text).expect("toml");
    assert_eq!(
        back["plugins"]["config"]["perms"]["upstream"]["ClientSecret"].as_str(),
        Some("<redacted>")
    );
    // The plugins still get the real values.
    assert_eq!(
        c.plugins.config["perms"]["api_key"].as_str(),
        Some("k-1111")
    );
    assert!(looks_secret("GITHUB_Token_url") && !looks_secret("username"));
}

#[test]
fn dev_login_refuses_public_listener() {
    let errs = Config::from_toml_str(
        "[server]\nlisten = \"0.0.0.0:8000\"\n[providers.dev]\nenabled = true\n",
        &env(&[]),
    )
    .expect_err("invalid")
    .0;
    assert_eq!(errs[0].key, "providers.dev.enabled");
}

#[test]
fn relative_paths_of_a_config_file_are_relative_to_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "[server]\ndata_dir = \"state\"\n[database]\nurl = \"sqlite://state/a.db?mode=rwc\"\n\
         [keys]\nprivate_key_file = \"keys/private.pem\"\npublic_key_file = \"/etc/authhost/public.pem\"\n\
         retired_private_key_files = [\"keys/old.pem\"]\n[plugins]\ndirs = [\"plugins\", \"/opt/plugins\"]\n",
    )
    .unwrap();
    let c = Config::load(Some(&file), &env(&[])).unwrap();
    let d = dir.path();
    assert_eq!(c.server.data_dir, d.join("state"));
    assert_eq!(
        c.database_url(),
        format!("sqlite://{}/state/a.db?mode=rwc", d.display())
    );
    assert_eq!(c.keys.private_key_file, Some(d.join("keys/private.pem")));
    assert_eq!(
        c.keys.public_key_file,
        Some(std::path::PathBuf::from("/etc/authhost/public.pem"))
    );
    assert_eq!(c.keys.retired_private_key_files, [d.join("keys/old.pem")]);
    assert_eq!(
        c.plugins.dirs,
        [d.join("plugins"), std::path::PathBuf::from("/opt/plugins")]
    );
    // Paths from the environment are the shell's: relative to the working directory.
    let from_env = env(&[
        ("DATABASE_URL", "sqlite://here/b.db"),
        ("AUTHHOST_SERVER__DATA_DIR", "cwd-state"),
        ("PRIVATE_KEY_FILE", "k.pem"),
    ]);
    let c = Config::load(Some(&file), &from_env).unwrap();
    assert_eq!(c.database_url(), "sqlite://here/b.db");
    assert_eq!(c.server.data_dir, std::path::PathBuf::from("cwd-state"));
    assert_eq!(
        c.keys.private_key_file,
        Some(std::path::PathBuf::from("k.pem"))
    );
    // ...while the file's other paths still move.
    assert_eq!(c.keys.retired_private_key_files, [d.join("keys/old.pem")]);
    // Without a file (tests, tools), paths stay as written.
    let c = Config::from_toml_str("[server]\ndata_dir = \"state\"\n", &env(&[])).unwrap();
    assert_eq!(c.server.data_dir, std::path::PathBuf::from("state"));
}

#[test]
fn sqlite_urls_move_under_the_config_folder_only_when_relative() {
    let base = std::path::Path::new("/srv/authhost");
    let cases = [
        (
            "sqlite://data/a.db?mode=rwc",
            Some("sqlite:///srv/authhost/data/a.db?mode=rwc"),
        ),
        ("sqlite:a.db", Some("sqlite:///srv/authhost/a.db")),
        ("sqlite:///var/lib/a.db", None),
        ("sqlite::memory:", None),
        ("postgres://u@db/auth", None),
    ];
    assert_eq!(
        paths::sqlite_under(std::path::Path::new("/srv/50%?#"), "sqlite://a.db?mode=rwc")
            .as_deref(),
        Some("sqlite:///srv/50%25%3F%23/a.db?mode=rwc")
    );
    for (url, expected) in cases {
        assert_eq!(paths::sqlite_under(base, url).as_deref(), expected, "{url}");
    }
}

#[test]
fn the_database_url_is_shown_without_its_password_only() {
    let show = |url: &str| {
        let c =
            Config::from_toml_str(&format!("[database]\nurl = \"{url}\"\n"), &env(&[])).unwrap();
        let text = c.to_redacted_toml();
        text.lines()
            .find(|l| l.starts_with("url = "))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        show("sqlite://data/a.db?mode=rwc"),
        "url = \"sqlite://data/a.db?mode=rwc\""
    );
    assert_eq!(
        show("postgres://auth:hunter2@db.example:5432/auth"),
        "url = \"postgres://auth:REDACTED@db.example:5432/auth\""
    );
    assert_eq!(
        show("postgres://db.example/auth?user=auth&password=hunter2&sslmode=require"),
        "url = \"postgres://db.example/auth?user=auth&password=REDACTED&sslmode=require\""
    );
    assert_eq!(redact::without_password("not a url: hunter2"), "<redacted>");
}

#[test]
fn the_pending_login_caps_of_earlier_versions_are_accepted_and_named_as_ignored() {
    let c = Config::from_toml_str("", &env(&[])).expect("valid");
    assert!(c.ignored_settings().is_empty());
    let old = "[login]\nmax_pending_per_client = 500\nmax_pending_total = 100000\n";
    let c = Config::from_toml_str(old, &env(&[])).expect("an upgraded file still loads");
    let ignored = c.ignored_settings();
    assert_eq!(ignored.len(), 2, "{ignored:?}");
    assert!(ignored[0].starts_with("login.max_pending_per_client is ignored"));
    assert!(ignored[1].starts_with("login.max_pending_total is ignored"));
    let c = Config::from_toml_str("", &env(&[("AUTHHOST_LOGIN__MAX_PENDING_TOTAL", "5")]))
        .expect("valid");
    assert_eq!(c.ignored_settings().len(), 1);
    // Anything else under [login] is still a mistake.
    let errs =
        Config::from_toml_str("[login]\nmax_pending = 1\n", &env(&[])).expect_err("unknown key");
    assert!(errs.0.iter().any(|e| e.key.contains("login")), "{errs:?}");
}
