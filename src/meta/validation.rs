//! Name, label and key validators with kube-apiserver v1.32's messages, and the Go-style quoting
//! every bad value is printed with: the counterpart of apimachinery's `util/validation`.
//!
//! The registry (field errors), the selector parser and the scheduler all call these, so one bad
//! value reads the same wherever it is reported. The Go regular expressions are reproduced as
//! hand-written character checks, so no regex engine is needed; the patterns still appear in the
//! messages because clients see them.

/// Go's `strconv.Quote`, which is what `%q` prints: the one way a bad value is quoted in every
/// message. Printable characters are kept; the usual escapes, `\xNN`, `\uNNNN` and `\UNNNNNNNN`
/// stand for the rest, as Go writes them.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if !is_go_printable(c) => {
                let code = c as u32;
                if code < 0x10000 {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` for non-ASCII characters (the exact answer needs
/// Unicode category tables this crate does not carry): controls, spaces and separators other
/// than ASCII space, invisible format characters and private-use code points are not printable.
fn is_go_printable(c: char) -> bool {
    let format_or_private = matches!(c as u32,
        0x00ad | 0x0600..=0x0605 | 0x061c | 0x06dd | 0x070f | 0x180e | 0x200b..=0x200f
        | 0x202a..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb
        | 0xe000..=0xf8ff | 0xf0000..=0x10ffff);
    !(c.is_control() || c.is_whitespace() || format_or_private)
}

// ---------------------------------------------------------------------------------------------
// Message builders shared with upstream's util/validation.
// ---------------------------------------------------------------------------------------------

/// Upstream `EmptyError()`.
pub const EMPTY_ERROR: &str = "must be non-empty";

/// Upstream `MaxLenError`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// Upstream `InclusiveRangeError`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// Upstream `RegexError`, including its odd `'a',  or 'b', ` punctuation, which clients see.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(ex);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(fmt);
    s.push_str("')");
    s
}

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_ERR: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";
const RELAXED_ENV_VAR_NAME_ERR: &str = "a valid environment variable name must consist only of printable ASCII characters other than '='";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const HTTP_HEADER_NAME_FMT: &str = "[-A-Za-z0-9]+";
const HTTP_HEADER_NAME_ERR: &str =
    "a valid HTTP header must consist of alphanumeric characters or '-'";

/// Maximum label value / qualified-name name-part length.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// DNS-1123 label max length.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// DNS-1123 subdomain max length.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Upstream `TotalAnnotationSizeLimitB` (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => alnum(f) && alnum(l) && b.iter().all(|&c| alnum(c) || c == b'-'),
        _ => false,
    }
}

/// `^label(\.label)*$`
fn matches_dns_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns_label)
}

/// Upstream `IsDNS1123Label`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns_label(value) {
        if matches_dns_subdomain(value) {
            // A valid subdomain that is not a valid label can only be failing on dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Upstream `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`: non-empty, alphanumeric at both ends.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Upstream `IsQualifiedName`, which label keys must satisfy: `[prefix/]name` with a DNS
/// subdomain prefix and a name of at most 63 characters.
pub fn is_qualified_name(key: &str) -> Vec<String> {
    let examples = ["MyName", "my.name", "123-abc"];
    let mut problems = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                problems.push("prefix part must be non-empty".to_owned());
            } else {
                problems.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|p| format!("prefix part {p}")),
                );
            }
            *name
        }
        _ => {
            problems.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &examples)
            ));
            return problems;
        }
    };
    if name.is_empty() {
        problems.push("name part must be non-empty".to_owned());
    } else if name.len() > LABEL_VALUE_MAX_LENGTH {
        problems.push(format!(
            "name part {}",
            max_len_error(LABEL_VALUE_MAX_LENGTH)
        ));
    }
    if !is_qualified_name_part(name) {
        problems.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &examples)
        ));
    }
    problems
}

/// Upstream `IsValidLabelValue`: empty, or at most 63 characters shaped like a qualified name.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        problems.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        problems.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    problems
}

/// Upstream `hasChDirPrefix`.
fn has_chdir_prefix(value: &str) -> Vec<String> {
    if value == "." {
        vec!["must not be '.'".to_string()]
    } else if value == ".." {
        vec!["must not be '..'".to_string()]
    } else if value.starts_with("..") {
        vec!["must not start with '..'".to_string()]
    } else {
        Vec::new()
    }
}

/// Upstream strict `IsEnvVarName` (`[-._a-zA-Z][-._a-zA-Z0-9]*`). v1.32 pods use the relaxed rule
/// instead because the `RelaxedEnvironmentVariableValidation` gate is beta and on by default.
pub fn is_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let b = value.as_bytes();
    let ok_first = |c: u8| c.is_ascii_alphabetic() || c == b'-' || c == b'.' || c == b'_';
    let ok_rest = |c: u8| ok_first(c) || c.is_ascii_digit();
    let matches = match b.split_first() {
        Some((&f, rest)) => ok_first(f) && rest.iter().all(|&c| ok_rest(c)),
        None => false,
    };
    if !matches {
        errs.push(regex_error(
            ENV_VAR_NAME_ERR,
            ENV_VAR_NAME_FMT,
            &["my.env-name", "MY_ENV.NAME", "MyEnvName1"],
        ));
    }
    errs.extend(has_chdir_prefix(value));
    errs
}

/// Upstream `IsRelaxedEnvVarName`: any printable ASCII except `=`.
pub fn is_relaxed_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push(format!("environment variable name {EMPTY_ERROR}"));
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(RELAXED_ENV_VAR_NAME_ERR.to_string());
    }
    errs
}

/// Upstream `IsConfigMapKey` (also used for secret keys).
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_');
    if !ok {
        errs.push(regex_error(
            CONFIG_MAP_KEY_ERR,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    errs.extend(has_chdir_prefix(value));
    errs
}

/// Upstream `IsValidPortNum`.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// Upstream `IsValidPortName` (IANA service names).
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty()
        || !port
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// Upstream `IsHTTPHeaderName`.
pub fn is_http_header_name(value: &str) -> Vec<String> {
    if !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
    {
        Vec::new()
    } else {
        vec![regex_error(
            HTTP_HEADER_NAME_ERR,
            HTTP_HEADER_NAME_FMT,
            &["X-Header-Name"],
        )]
    }
}

/// Upstream `maskTrailingDash`: a generateName prefix may end in '-', so the last two bytes are
/// replaced by an 'a' before checking (upstream really drops two bytes; we mirror that, by chars).
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let mut chars: Vec<char> = name.chars().collect();
        chars.pop();
        chars.pop();
        chars.push('a');
        chars.into_iter().collect()
    } else {
        name.to_string()
    }
}

/// Upstream `NameIsDNSSubdomain` (the name function for pods and most resources).
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_subdomain(&mask_trailing_dash(name))
    } else {
        is_dns1123_subdomain(name)
    }
}

/// Upstream `NameIsDNSLabel` (namespaces).
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_label(&mask_trailing_dash(name))
    } else {
        is_dns1123_label(name)
    }
}

/// Upstream `path.ValidatePathSegmentName`: names that end up in a URL path segment may not be
/// `.`/`..` and may not contain `/` or `%` (the prefix form only checks the contents).
pub fn validate_path_segment_name(name: &str, prefix: bool) -> Vec<String> {
    if !prefix {
        for bad in [".", ".."] {
            if name == bad {
                return vec![format!("may not be '{bad}'")];
            }
        }
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if name.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const QNAME_REGEX: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        let cases = [
            ("plain", "\"plain\""),
            ("a\"b", "\"a\\\"b\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("tab\there", "\"tab\\there\""),
            ("nl\n", "\"nl\\n\""),
            ("\u{1}", "\"\\x01\""),
            ("\u{7f}", "\"\\x7f\""),
            ("\u{85}", "\"\\u0085\""),
            ("héllo ☃", "\"héllo ☃\""),
            ("\u{200b}", "\"\\u200b\""),
            // Spaces other than ASCII space, bidi controls and private use: the selector parser's
            // old copy kept some of these and the registry's escaped others.
            ("\u{a0}", "\"\\u00a0\""),
            ("\u{202a}", "\"\\u202a\""),
            ("\u{600}", "\"\\u0600\""),
            ("\u{e000}", "\"\\ue000\""),
            ("\u{2028}", "\"\\u2028\""),
            ("\u{f0000}", "\"\\U000f0000\""),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want, "input {input:?}");
        }
    }

    #[test]
    fn dns1123_label_reports_length_dots_and_format() {
        let long = "a".repeat(64);
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("db", vec![]),
            ("a-1", vec![]),
            (
                &long,
                vec!["must be no more than 63 characters".to_string()],
            ),
            ("a.b", vec!["must not contain dots".to_string()]),
            ("Db", vec![LABEL_MSG.to_string()]),
            ("-a", vec![LABEL_MSG.to_string()]),
            ("", vec![LABEL_MSG.to_string()]),
            ("ü", vec![LABEL_MSG.to_string()]),
        ];
        for (input, want) in cases {
            assert_eq!(is_dns1123_label(input), want, "input {input:?}");
        }
    }

    #[test]
    fn dns1123_subdomain_reports_length_and_format() {
        let long = format!("{}.{}", "a".repeat(200), "b".repeat(60));
        assert!(is_dns1123_subdomain("example.com").is_empty());
        assert_eq!(
            is_dns1123_subdomain("Bad_Name"),
            vec![SUBDOMAIN_MSG.to_string()]
        );
        assert_eq!(
            is_dns1123_subdomain("a..b"),
            vec![SUBDOMAIN_MSG.to_string()]
        );
        assert_eq!(
            is_dns1123_subdomain(&long),
            vec!["must be no more than 253 characters".to_string()]
        );
    }

    #[test]
    fn qualified_name_checks_prefix_and_name_parts() {
        let long = "a".repeat(64);
        let cases: Vec<(String, Vec<String>)> = vec![
            ("example.com/MyName".into(), vec![]),
            ("app.kubernetes.io/name".into(), vec![]),
            ("/foo".into(), vec!["prefix part must be non-empty".into()]),
            ("Bad_Prefix/foo".into(), vec![format!("prefix part {SUBDOMAIN_MSG}")]),
            ("".into(), vec!["name part must be non-empty".into(), format!("name part {QNAME_REGEX}")]),
            (long.clone(), vec!["name part must be no more than 63 characters".into()]),
            ("-x".into(), vec![format!("name part {QNAME_REGEX}")]),
            (
                "a/b/c".into(),
                vec![format!("a qualified name {QNAME_REGEX} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(is_qualified_name(&input), want, "input {input:?}");
        }
    }

    #[test]
    fn label_value_allows_empty_and_rejects_bad_edges() {
        let regex = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
        assert!(is_valid_label_value("").is_empty());
        assert!(is_valid_label_value("MongoLabs").is_empty());
        assert_eq!(is_valid_label_value("-bad"), vec![regex.to_string()]);
        assert_eq!(
            is_valid_label_value(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_string()]
        );
    }

    #[test]
    fn env_var_names_strict_and_relaxed_forms() {
        let strict = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";
        assert!(is_env_var_name("MY_VAR").is_empty());
        assert_eq!(is_env_var_name("1A"), vec![strict.to_string()]);
        assert_eq!(is_env_var_name(".."), vec!["must not be '..'".to_string()]);
        assert_eq!(
            is_env_var_name("..a"),
            vec!["must not start with '..'".to_string()]
        );
        assert!(is_relaxed_env_var_name("1 weird:name!").is_empty());
        let relaxed = "a valid environment variable name must consist only of printable ASCII characters other than '='";
        assert_eq!(is_relaxed_env_var_name("A=B"), vec![relaxed.to_string()]);
        assert_eq!(is_relaxed_env_var_name("ünï"), vec![relaxed.to_string()]);
        assert_eq!(
            is_relaxed_env_var_name(""),
            vec!["environment variable name must be non-empty".to_string()]
        );
    }

    #[test]
    fn port_names_and_numbers() {
        assert!(is_valid_port_name("http").is_empty());
        assert_eq!(
            is_valid_port_name("-Http--"),
            vec![
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
                    .to_string(),
                "must not contain consecutive hyphens".to_string(),
                "must not begin or end with a hyphen".to_string(),
            ]
        );
        assert_eq!(
            is_valid_port_name("8080"),
            vec!["must contain at least one letter (a-z)".to_string()]
        );
        assert!(is_valid_port_num(65535).is_empty());
        assert_eq!(
            is_valid_port_num(0),
            vec!["must be between 1 and 65535, inclusive".to_string()]
        );
    }

    #[test]
    fn path_segment_names_forbid_dots_slash_and_percent() {
        assert_eq!(
            validate_path_segment_name(".", false),
            vec!["may not be '.'".to_string()]
        );
        assert_eq!(
            validate_path_segment_name("..", false),
            vec!["may not be '..'".to_string()]
        );
        assert!(validate_path_segment_name("..", true).is_empty());
        assert_eq!(
            validate_path_segment_name("a/b%c", false),
            vec![
                "may not contain '/'".to_string(),
                "may not contain '%'".to_string()
            ]
        );
        assert!(validate_path_segment_name("ok-name", false).is_empty());
    }

    #[test]
    fn generate_name_prefix_may_end_with_dash() {
        assert!(name_is_dns_subdomain("web-", true).is_empty());
        assert_eq!(
            name_is_dns_subdomain("web-", false),
            vec![SUBDOMAIN_MSG.to_string()]
        );
        // Upstream's mask drops two characters, so a multi-byte char before the dash is safe.
        assert!(name_is_dns_subdomain("wéb-", true).len() == 1);
        assert!(name_is_dns_label("-", true).len() == 1);
    }

    #[test]
    fn validators_never_panic_on_hostile_input() {
        for input in [
            "",
            "/",
            "//",
            "ü/ß",
            "\u{0}",
            "a".repeat(10_000).as_str(),
            "-",
            "--",
            ".",
            "é-",
        ] {
            let _ = is_dns1123_label(input);
            let _ = is_dns1123_subdomain(input);
            let _ = is_qualified_name(input);
            let _ = is_valid_label_value(input);
            let _ = is_env_var_name(input);
            let _ = is_relaxed_env_var_name(input);
            let _ = is_config_map_key(input);
            let _ = is_valid_port_name(input);
            let _ = name_is_dns_subdomain(input, true);
            let _ = name_is_dns_label(input, true);
            let _ = validate_path_segment_name(input, false);
            let _ = go_quote(input);
        }
    }
}
