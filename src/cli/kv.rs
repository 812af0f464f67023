//! Ganeti's `key=value,key=value` option values (`-B`, `-H`, `-N`, `-D`,
//! `--disk`, `--net`), parsed in one place.
//!
//! Rules (as Ganeti's command line has them):
//! - items are separated by `,`; a `\,` is a literal comma inside a value;
//! - `key=value` sets a value; a bare `key` means true, `no_key` false and
//!   `-key` "reset to the default";
//! - the identifier forms (`-H kvm:key=val`, `--disk 0:size=1G`) put an
//!   identifier before a `:`; `no_ID` removes and `-ID` resets that item.
//!
//! Typed checking of the values belongs to the consumer (config::params
//! for parameters); this module only splits text.

/// One value in a `key=value` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvValue {
    /// `key=value`.
    Str(String),
    /// `key` (true) or `no_key` (false).
    Bool(bool),
    /// `-key`: reset to the inherited default.
    Reset,
}

impl KvValue {
    /// The value as the text a parameter parser takes ("true"/"false" for flags).
    pub fn as_text(&self) -> Option<String> {
        match self {
            KvValue::Str(s) => Some(s.clone()),
            KvValue::Bool(b) => Some(b.to_string()),
            KvValue::Reset => None,
        }
    }
}

/// An identifier-prefixed item (`kvm:key=val`, `0:size=1G`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentKv {
    /// `ID:key=val,…` (or plain `ID`, with no keys).
    Set(String, Vec<(String, KvValue)>),
    /// `no_ID`: remove the item.
    Remove(String),
    /// `-ID`: reset the item.
    Reset(String),
}

/// Malformed option text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// An empty key, as in `=5` or `a=1,,b=2`.
    #[error("empty key in {0:?}")]
    EmptyKey(String),
    /// A key given twice.
    #[error("key {key:?} given more than once in {text:?}")]
    Duplicate {
        /// The key.
        key: String,
        /// The whole option value.
        text: String,
    },
    /// `no_ID`/`-ID` followed by parameters.
    #[error("{0:?}: cannot give parameters when removing or resetting an item")]
    ParamsOnRemoval(String),
    /// An empty identifier, as in `:a=1`.
    #[error("missing identifier before ':' in {0:?}")]
    EmptyIdent(String),
}

fn split_items(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                cur.push(',');
                chars.next();
            }
            ',' => items.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    items.push(cur);
    items
}

/// Parses `key=value,key,no_key,-key`. An empty text is an empty list.
pub fn parse_keyval(text: &str) -> Result<Vec<(String, KvValue)>, KvError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(String, KvValue)> = Vec::new();
    for item in split_items(text) {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k.to_string(), KvValue::Str(v.to_string())),
            None => {
                if let Some(k) = item.strip_prefix("no_") {
                    (k.to_string(), KvValue::Bool(false))
                } else if let Some(k) = item.strip_prefix('-') {
                    (k.to_string(), KvValue::Reset)
                } else {
                    (item.clone(), KvValue::Bool(true))
                }
            }
        };
        if key.is_empty() {
            return Err(KvError::EmptyKey(text.to_string()));
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(KvError::Duplicate {
                key,
                text: text.to_string(),
            });
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Parses `ID:key=value,…`, `ID`, `no_ID` or `-ID`.
pub fn parse_ident_keyval(text: &str) -> Result<IdentKv, KvError> {
    let (ident, rest) = match text.split_once(':') {
        Some((i, r)) => (i, Some(r)),
        None => (text, None),
    };
    if ident.is_empty() {
        return Err(KvError::EmptyIdent(text.to_string()));
    }
    if let Some(id) = ident.strip_prefix("no_") {
        if rest.is_some_and(|r| !r.is_empty()) {
            return Err(KvError::ParamsOnRemoval(text.to_string()));
        }
        return Ok(IdentKv::Remove(id.to_string()));
    }
    if let Some(id) = ident.strip_prefix('-') {
        if rest.is_some_and(|r| !r.is_empty()) {
            return Err(KvError::ParamsOnRemoval(text.to_string()));
        }
        return Ok(IdentKv::Reset(id.to_string()));
    }
    Ok(IdentKv::Set(
        ident.to_string(),
        parse_keyval(rest.unwrap_or(""))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyval_forms() {
        let v =
            parse_keyval("memory=512M,auto_balance,no_acpi,-vcpus,kernel_args=ro\\,quiet").unwrap();
        assert_eq!(
            v,
            vec![
                ("memory".into(), KvValue::Str("512M".into())),
                ("auto_balance".into(), KvValue::Bool(true)),
                ("acpi".into(), KvValue::Bool(false)),
                ("vcpus".into(), KvValue::Reset),
                ("kernel_args".into(), KvValue::Str("ro,quiet".into())),
            ]
        );
        assert_eq!(parse_keyval("").unwrap(), vec![]);
    }

    #[test]
    fn keyval_errors_name_the_problem() {
        assert!(matches!(
            parse_keyval("a=1,,b=2"),
            Err(KvError::EmptyKey(_))
        ));
        assert!(matches!(parse_keyval("=5"), Err(KvError::EmptyKey(_))));
        let e = parse_keyval("a=1,a=2").unwrap_err();
        assert_eq!(
            e.to_string(),
            "key \"a\" given more than once in \"a=1,a=2\""
        );
    }

    #[test]
    fn ident_forms() {
        assert_eq!(
            parse_ident_keyval("kvm:kernel_path=/boot/vmlinuz").unwrap(),
            IdentKv::Set(
                "kvm".into(),
                vec![("kernel_path".into(), KvValue::Str("/boot/vmlinuz".into()))]
            )
        );
        assert_eq!(
            parse_ident_keyval("fake").unwrap(),
            IdentKv::Set("fake".into(), vec![])
        );
        assert_eq!(
            parse_ident_keyval("no_xen-pvm").unwrap(),
            IdentKv::Remove("xen-pvm".into())
        );
        assert_eq!(
            parse_ident_keyval("-kvm").unwrap(),
            IdentKv::Reset("kvm".into())
        );
        assert!(parse_ident_keyval(":a=1").is_err());
        assert!(parse_ident_keyval("no_kvm:a=1").is_err());
    }
}
