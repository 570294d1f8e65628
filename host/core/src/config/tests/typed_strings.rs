//! The settings written as strings but read once into types: `server.admin_listen`,
//! `plugins.services`, `plugins.extensions`.

use super::*;

#[test]
fn service_lists_follow_the_original_syntax() {
    let s = parse_services(" example:sample ; ;plain;").expect("valid");
    assert_eq!(
        s,
        vec![
            ServiceEntry {
                alias: "example".into(),
                plugin: "sample".into()
            },
            ServiceEntry {
                alias: "plain".into(),
                plugin: "plain".into()
            },
        ]
    );
    assert!(parse_services("a:x;a:y").is_err());
    assert_eq!(parse_extensions("x; y;;").expect("valid"), vec!["x", "y"]);
}

#[test]
fn admin_listen_is_an_optional_address_read_once() {
    let on = Config::from_toml_str("[server]\nadmin_listen = \" 127.0.0.1:9100 \"\n", &env(&[]))
        .expect("valid");
    assert_eq!(on.server.admin_listen, "127.0.0.1:9100".parse().ok());
    // An empty variable turns a file's setting off, as an operator would from the environment.
    let off = Config::from_toml_str(
        "[server]\nadmin_listen = \"127.0.0.1:9100\"\n",
        &env(&[("AUTHHOST_SERVER__ADMIN_LISTEN", "")]),
    )
    .expect("valid");
    assert_eq!(off.server.admin_listen, None);
    assert!(
        off.to_redacted_toml().contains("admin_listen = \"\""),
        "{}",
        off.to_redacted_toml()
    );
    // A bad address is reported with every other problem, not alone.
    let errs = Config::from_toml_str(
        "[server]\nadmin_listen = \"localhost\"\nlog_format = \"JSON\"\n",
        &env(&[]),
    )
    .expect_err("invalid")
    .0;
    assert_errors_name(&errs, &["server.admin_listen", "server.log_format"]);
    let addr = errs
        .iter()
        .find(|e| e.key == "server.admin_listen")
        .expect("error");
    assert_eq!(addr.message, "`localhost` is not an address:port");
}

#[test]
fn plugin_lists_are_parsed_once_and_written_back_as_the_original_strings() {
    let c = Config::from_toml_str(
        "[plugins]\nextensions = \"a; b\"\n",
        &env(&[("ALLOWED_SERVICES", " example:sample ;plain")]),
    )
    .expect("valid");
    let aliases: Vec<_> = c
        .plugins
        .services
        .iter()
        .map(|e| e.alias.as_str())
        .collect();
    assert_eq!(aliases, ["example", "plain"]);
    assert_eq!(c.plugins.extensions.iter().collect::<Vec<_>>(), ["a", "b"]);
    let shown = c.to_redacted_toml();
    assert!(
        shown.contains("services = \"example:sample;plain\"")
            && shown.contains("extensions = \"a;b\""),
        "{shown}"
    );
    // Both lists' errors come with the rest, each naming its key.
    let errs = Config::from_toml_str(
        "[plugins]\nservices = \"a:x;a:y\"\nextensions = \"e;e\"\n[server]\nlog_format = \"JSON\"\n",
        &env(&[]),
    )
    .expect_err("invalid")
    .0;
    assert_errors_name(
        &errs,
        &[
            "plugins.services",
            "plugins.extensions",
            "server.log_format",
        ],
    );
}
