//! Image references: the bit of `distribution/reference` that `imagePullPolicy` defaulting and
//! the kubelet's `InvalidImageName` check need; the one parser of them.

/// Splits a container image reference the way `parsers.ParseImageName` does. Returns the tag (if
/// any) and whether a digest is present, or `None` when the reference does not parse (upstream
/// then treats the tag as empty).
pub fn parse_image_reference(image: &str) -> Option<(Option<String>, bool)> {
    if image.is_empty()
        || image.len() == 64
            && image
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        // Empty, or a bare 64-hex image ID, which is reserved and not a repository name.
        return None;
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        if !valid_digest(d) {
            return None;
        }
    }
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|s| colon > s) => {
            (&name_tag[..colon], Some(&name_tag[colon + 1..]))
        }
        _ => (name_tag, None),
    };
    if let Some(t) = tag {
        let ok = t.len() <= 128
            && t.bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
        if !ok {
            return None;
        }
    }
    if name.is_empty() || name.len() > 255 {
        return None;
    }
    // The first component is a registry host when it looks like one (has '.' or ':', is
    // "localhost", or has upper case); otherwise the whole name is a Docker Hub path.
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    };
    if let Some(d) = domain {
        if !valid_registry_host(d) {
            return None;
        }
    }
    if !path.split('/').all(valid_path_component) {
        return None;
    }
    Some((tag.map(str::to_string), digest.is_some()))
}

/// `algorithm:hex` where the algorithm is one the digest library registers.
pub fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == want && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// `host[:port]` where host is dotted DNS-ish components or a bracketed IPv6 address.
pub fn valid_registry_host(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                match after {
                    "" => return true,
                    p => match p.strip_prefix(':') {
                        Some(port) => ("", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.is_empty() {
        return d.starts_with('[');
    }
    host.split('.').all(|comp| {
        let b = comp.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                f.is_ascii_alphanumeric()
                    && l.is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            }
            _ => false,
        }
    })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
pub fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !b.first().is_some_and(|&x| alnum(x)) || !b.last().is_some_and(|&x| alnum(x)) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `SetDefaults_Container`'s pull policy: `Always` when the effective tag is `latest` (an
/// untagged, undigested reference means `latest`), else `IfNotPresent` — including references
/// that fail to parse, since upstream ignores the parse error here.
pub fn default_pull_policy(image: &str) -> &'static str {
    match parse_image_reference(image) {
        Some((Some(tag), _)) if tag == "latest" => "Always",
        Some((None, false)) => "Always",
        _ => "IfNotPresent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_the_kubelet_reads_them() {
        let digest = format!("img@sha256:{}", "a".repeat(64));
        for ok in [
            "busybox",
            "busybox:1.36",
            "localhost:5000/a/b:v1",
            "rkube-test/sh:1",
            digest.as_str(),
        ] {
            assert!(parse_image_reference(ok).is_some(), "{ok}");
        }
        for bad in ["NGINX:::latest", "a//b", "", "x:", "img@sha256:abc"] {
            assert!(parse_image_reference(bad).is_none(), "{bad}");
        }
    }
}
