//! The login chooser: with several login methods configured, the authorization endpoint lists
//! them, each link starting that login with the authorization request as its `next`. No
//! consent screen follows: clients are registered by the operator (first-party).

use axum::response::Response;

use crate::app::App;
use crate::routes::page::{self, escape};

pub fn render(app: &App, providers: &[&str], resume: &str) -> Response {
    let items: String = providers
        .iter()
        .map(|p| {
            format!(
                r#"<li><a href="{href}">{label}</a></li>"#,
                href = escape(&app.login_url(p, Some(resume))),
                label = escape(&label(p)),
            )
        })
        .collect();
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in</title>
<style>{style}</style></head>
<body><h1>Log in</h1>
<ul>{items}</ul>
</body></html>"#,
        style = page::STYLE,
    );
    page::html(html, &page::content_security_policy("'none'"))
}

fn label(provider: &str) -> String {
    match provider {
        "dev" => "Dev login (development only)".into(),
        "github" => "GitHub".into(),
        "google" => "Google".into(),
        other => other.to_string(),
    }
}
