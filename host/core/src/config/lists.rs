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

/// `plugins.services`, parsed once when the configuration is read. Written (in the file, the
/// environment and `authhost config`) as the original's `;`-separated string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services(Vec<ServiceEntry>);

impl Services {
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_services(text).map(Services)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ServiceEntry> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ";" };
            if e.alias == e.plugin {
                write!(f, "{sep}{}", e.plugin)?;
            } else {
                write!(f, "{sep}{}:{}", e.alias, e.plugin)?;
            }
        }
        Ok(())
    }
}

/// `plugins.extensions`, parsed once; written as the original's `;`-separated string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions(Vec<String>);

impl Extensions {
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_extensions(text).map(Extensions)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(";"))
    }
}

/// Both lists travel as strings; a wrong one is reported with the other configuration errors
/// before extraction (`validate::check_choices`), so `deserialize` failing is the last resort.
macro_rules! as_string {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                <$ty>::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
as_string!(Services);
as_string!(Extensions);
