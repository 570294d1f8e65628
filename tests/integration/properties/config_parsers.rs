//! The configuration parsers: service and extension lists, and the environment overlay.

use authhost::config::{Config, EnvMap, Extensions, Services, parse_extensions, parse_services};
use proptest::prelude::*;
use proptest::sample::select;

use super::config;

fn services_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        select(vec![
            "", ";", ":", " ", ";;", "::", "a", "example", "example:", ":example", "a:b", "a:b:c",
            " a : b ", "\u{e9}", "\t", "\n", "\u{0}", "\u{3000}", "\u{a0}",
        ])
        .prop_map(str::to_string),
        "[a-z:; ]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|parts| parts.concat())
}

/// Guards the `ALLOWED_SERVICES` / `INSTALLED_EXTENSIONS` parsers: they never panic, and what they
/// accept is clean (non-empty, trimmed, no separators, no duplicate alias or name) and is written
/// back as a string that parses to the same list.
#[test]
fn service_and_extension_lists_parse_cleanly() {
    proptest!(config(256), |(text in services_text())| {
        if let Ok(entries) = parse_services(&text) {
            for (i, e) in entries.iter().enumerate() {
                for part in [&e.alias, &e.plugin] {
                    prop_assert!(!part.is_empty() && part.trim() == part && !part.contains(';'), "{:?} from {:?}", e, text);
                }
                prop_assert!(!e.alias.contains(':'), "{:?} from {:?}", e, text);
                prop_assert!(entries[..i].iter().all(|o| o.alias != e.alias), "duplicate alias from {:?}", text);
            }
        }
        // What `authhost config` writes back reads as the same list.
        if let Ok(list) = Services::parse(&text) {
            prop_assert_eq!(Services::parse(&list.to_string()), Ok(list.clone()), "from {:?}", text);
        }
        if let Ok(list) = Extensions::parse(&text) {
            prop_assert_eq!(Extensions::parse(&list.to_string()), Ok(list.clone()), "from {:?}", text);
        }
        if let Ok(names) = parse_extensions(&text) {
            for (i, n) in names.iter().enumerate() {
                prop_assert!(!n.is_empty() && n.trim() == n && !n.contains(';'), "{:?} from {:?}", n, text);
                prop_assert!(!names[..i].contains(n), "duplicate extension from {:?}", text);
            }
        }
    });
}

fn env_name() -> impl Strategy<Value = String> {
    let section = select(vec![
        "SERVER",
        "DATABASE",
        "KEYS",
        "TOKENS",
        "REDIRECTS",
        "CORS",
        "PLUGINS",
        "PROVIDERS",
        "CACHES",
        "LOGIN",
        "server",
        "",
        "NOPE",
    ]);
    let key = select(vec![
        "LISTEN",
        "PREFIX",
        "EXTERNAL_ADDRESS",
        "DATA_DIR",
        "LOG_FORMAT",
        "RUN_MIGRATIONS",
        "MAX_CONNECTIONS",
        "MAX_CONNECTIONS_PER_CLIENT",
        "HEADER_READ_TIMEOUT_MS",
        "TRUSTED_PROXIES",
        "ADMIN_LISTEN",
        "URL",
        "USER_CACHE_MS",
        "PRIVATE_KEY",
        "PUBLIC_KEY",
        "PUBLIC_KEY_FILE",
        "EXTRA_PUBLIC_KEY_FILES",
        "USER_TOKEN_DAYS",
        "PERMISSION_TOKEN_SECONDS",
        "USER_TOKEN_ALGORITHM",
        "LEGACY_USER_TOKENS",
        "ISSUER",
        "ALLOWED",
        "ALLOWED_ORIGINS",
        "SERVICES",
        "EXTENSIONS",
        "CALL_TIMEOUT_MS",
        "MAX_CONCURRENT_CALLS",
        "CONFIG",
        "DIRS",
        "DEV",
        "GITHUB",
        "GOOGLE",
        "CORP",
        "ENABLED",
        "KIND",
        "CLIENT_ID",
        "CLIENT_SECRET",
        "SCOPES",
        "TIMEOUT_MS",
        "",
    ]);
    prop_oneof![
        4 => (section, prop::collection::vec(key, 1..4))
            .prop_map(|(s, keys)| format!("AUTHHOST_{s}__{}", keys.join("__"))),
        2 => select(vec![
            "PRIVATE_KEY",
            "PUBLIC_KEY",
            "PUBLIC_KEY_FILE",
            "DATABASE_URL",
            "EXTERNAL_ADDRESS",
            "ALLOWED_SERVICES",
            "INSTALLED_EXTENSIONS",
            "GOOGLE_KEY",
            "GOOGLE_SECRET",
            "GITHUB_KEY",
            "GITHUB_SECRET",
            "AUTHHOST_PLUGIN_PATH",
            "AUTHHOST_CONFIG",
            "AUTHHOST_LOG",
            "AUTHHOST___",
            "AUTHHOST_____",
            "AUTHHOST_A____B",
            "AUTHHOST___X",
        ])
        .prop_map(str::to_string),
        1 => "AUTHHOST_[A-Za-z_]{0,24}",
    ]
}

fn env_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "",
            " ",
            "true",
            "false",
            "TRUE",
            "1",
            "0",
            "-1",
            "14",
            "99999999999999999999",
            "1e3",
            "nan",
            "[]",
            "[\"a\"]",
            "[\"https://app.example.org\"]",
            "[1, \"a\"]",
            "[[",
            "{a = 1}",
            "{}",
            "\"quoted\"",
            "127.0.0.1:8000",
            "0.0.0.0:80",
            "[::1]:1",
            "auth.example.org",
            "http://",
            "https://auth.example.org/",
            "sqlite::memory:",
            "postgres://u@h/db",
            "example:sample_permission_provider;example",
            "a;a",
            ":",
            "HS256",
            "RS256",
            "oidc",
            "/nonexistent/path.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "\u{0}",
            "\u{1f980}",
        ])
        .prop_map(str::to_string),
        2 => "[ -~]{0,40}",
        1 => any::<String>(),
    ]
}

/// Guards start-up: no combination of `AUTHHOST_<SECTION>__<KEY>` and original variables (nor
/// TOML text) makes configuration loading panic; it may only answer errors.
#[test]
fn environment_overlay_never_panics() {
    proptest!(config(256), |(
        env in prop::collection::btree_map(env_name(), env_value(), 0..8),
        toml in prop_oneof![
            4 => Just(String::new()),
            1 => "[a-z_\\[\\]=\" .0-9\n]{0,60}",
            1 => any::<String>(),
        ],
    )| {
        let env: EnvMap = env;
        let _ = Config::from_toml_str(&toml, &env);
    });
}
