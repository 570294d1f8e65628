//! The original's `;`-separated lists: `ALLOWED_SERVICES` and `INSTALLED_EXTENSIONS`.

/// One `[alias:]plugin` entry of `ALLOWED_SERVICES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub alias: String,
    pub plugin: String,
}

/// Parses `ALLOWED_SERVICES`: entries trimmed, empty ones ignored, each alias at most once.
pub fn parse_services(text: &str) -> Result<Vec<ServiceEntry>, String> {
    let mut out: Vec<ServiceEntry> = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (alias, plugin) = match entry.split_once(':') {
            Some((a, p)) => (a.trim(), p.trim()),
            None => (entry, entry),
        };
        if alias.is_empty() || plugin.is_empty() {
            return Err(format!("`{entry}` needs both an alias and a plugin"));
        }
        if out.iter().any(|e| e.alias == alias) {
            return Err(format!("alias `{alias}` appears more than once"));
        }
        out.push(ServiceEntry {
            alias: alias.into(),
            plugin: plugin.into(),
        });
    }
    Ok(out)
}

/// Parses `INSTALLED_EXTENSIONS`: entries trimmed, empty ones ignored, each name at most once.
pub fn parse_extensions(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        if out.iter().any(|e| e == entry) {
            return Err(format!("extension `{entry}` appears more than once"));
        }
        out.push(entry.into());
    }
    Ok(out)
}
