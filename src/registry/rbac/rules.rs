//! RBAC rule matching, as upstream's `rbac/v1` helpers (`VerbMatches`, `APIGroupMatches`,
//! `ResourceMatches`, `ResourceNameMatches`, `NonResourceURLMatches`) and the coverage check
//! that prevents escalation (`pkg/registry/rbac/validation`: `Covers`, `BreakdownRule`,
//! `CompactString`). Pure functions on `PolicyRule`s, shared by the authorizer and the
//! escalation check.

use k8s_openapi::api::rbac::v1::PolicyRule;

/// A resource request as a rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub name: &'a str,
}

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

fn has(items: &[String], value: &str) -> bool {
    items.iter().any(|i| i == value)
}

pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    has(&rule.verbs, "*") || has(&rule.verbs, verb)
}

pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    let groups = list(&rule.api_groups);
    has(groups, "*") || has(groups, group)
}

/// `resource` alone, or `resource/subresource`; `*` matches everything and `*/sub` every
/// resource's `sub`.
pub fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    let combined = if subresource.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{subresource}")
    };
    list(&rule.resources).iter().any(|r| {
        r == "*"
            || *r == combined
            || (!subresource.is_empty()
                && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
    })
}

/// A rule without resourceNames covers every name; one with them only those names (and never
/// a request that names nothing, such as a list or a create).
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = list(&rule.resource_names);
    names.is_empty() || has(names, name)
}

/// `*` matches every path, `/prefix/*` every path under the prefix, else the path exactly.
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    list(&rule.non_resource_urls).iter().any(|u| {
        u == "*"
            || u == path
            || u.strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix))
    })
}

pub fn allows(rule: &PolicyRule, r: &Request<'_>) -> bool {
    verb_matches(rule, r.verb)
        && api_group_matches(rule, r.group)
        && resource_matches(rule, r.resource, r.subresource)
        && resource_name_matches(rule, r.name)
}

pub fn allows_path(rule: &PolicyRule, verb: &str, path: &str) -> bool {
    verb_matches(rule, verb) && non_resource_url_matches(rule, path)
}

/// Upstream `BreakdownRule`: one rule per group, resource, name and verb (or per URL and verb).
pub fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |v: &str| Some(vec![v.to_string()]);
    let mut out = Vec::new();
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                let names = list(&rule.resource_names);
                if names.is_empty() {
                    out.push(PolicyRule {
                        api_groups: one(group),
                        resources: one(resource),
                        verbs: vec![verb.clone()],
                        ..PolicyRule::default()
                    });
                }
                for name in names {
                    out.push(PolicyRule {
                        api_groups: one(group),
                        resources: one(resource),
                        resource_names: one(name),
                        verbs: vec![verb.clone()],
                        ..PolicyRule::default()
                    });
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn covers_all(owner: &[String], requested: &[String]) -> bool {
    has(owner, "*") || requested.iter().all(|r| has(owner, r))
}

fn urls_cover(owner: &[String], requested: &[String]) -> bool {
    requested.iter().all(|r| {
        owner
            .iter()
            .any(|o| o == "*" || o == r || o.strip_suffix('*').is_some_and(|p| r.starts_with(p)))
    })
}

fn resources_cover(owner: &[String], requested: &[String]) -> bool {
    requested.iter().all(|r| {
        has(owner, "*")
            || has(owner, r)
            || r.split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

/// Whether `owner` grants everything `requested` does (upstream `ruleCovers`).
pub fn rule_covers(owner: &PolicyRule, requested: &PolicyRule) -> bool {
    let owner_names = list(&owner.resource_names);
    covers_all(&owner.verbs, &requested.verbs)
        && covers_all(list(&owner.api_groups), list(&requested.api_groups))
        && resources_cover(list(&owner.resources), list(&requested.resources))
        && urls_cover(
            list(&owner.non_resource_urls),
            list(&requested.non_resource_urls),
        )
        && (owner_names.is_empty()
            || list(&requested.resource_names)
                .iter()
                .all(|n| has(owner_names, n))
                && !list(&requested.resource_names).is_empty())
}

/// What of `requested` no rule of `owned` grants, broken down rule by rule (upstream `Covers`).
pub fn uncovered(owned: &[PolicyRule], requested: &[PolicyRule]) -> Vec<PolicyRule> {
    requested
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owned.iter().any(|o| rule_covers(o, sub)))
        .collect()
}

fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// Upstream `PolicyRule.CompactString`: `{APIGroups:["apps"], Resources:["deployments"],
/// Verbs:["get"]}`, fields that are empty left out.
pub fn compact_string(rule: &PolicyRule) -> String {
    let mut parts = Vec::new();
    for (label, items) in [
        ("APIGroups", list(&rule.api_groups)),
        ("Resources", list(&rule.resources)),
        ("NonResourceURLs", list(&rule.non_resource_urls)),
        ("ResourceNames", list(&rule.resource_names)),
        ("Verbs", rule.verbs.as_slice()),
    ] {
        if !items.is_empty() {
            parts.push(format!("{label}:{}", go_quoted_list(items)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

/// Upstream's `rulesToString` for the escalation message: simple rules that differ only in
/// their verbs compacted into one, sorted, one per line.
pub fn rules_to_string(rules: &[PolicyRule]) -> String {
    let mut compact: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let simple = list(&rule.api_groups).len() == 1
            && list(&rule.resources).len() == 1
            && list(&rule.non_resource_urls).is_empty();
        let same = compact.iter_mut().find(|c| {
            simple
                && c.api_groups == rule.api_groups
                && c.resources == rule.resources
                && c.resource_names == rule.resource_names
                && c.non_resource_urls.is_none()
        });
        match same {
            Some(c) => {
                for verb in &rule.verbs {
                    if !has(&c.verbs, verb) {
                        c.verbs.push(verb.clone());
                    }
                }
            }
            None => compact.push(rule.clone()),
        }
    }
    let mut lines: Vec<(String, String)> = compact
        .iter()
        .map(|r| (format!("{r:?}"), compact_string(r)))
        .collect();
    lines.sort_by(|a, b| a.1.cmp(&b.1));
    lines
        .into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let list = |v: &[&str]| (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect());
        PolicyRule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            api_groups: list(groups),
            resources: list(resources),
            resource_names: list(names),
            non_resource_urls: None,
        }
    }

    fn req<'a>(verb: &'a str, group: &'a str, resource: &'a str, name: &'a str) -> Request<'a> {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Request {
            verb,
            group,
            resource,
            subresource,
            name,
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names_as_upstream() {
        let cases: &[(PolicyRule, Request<'_>, bool)] = &[
            (
                rule(&["get"], &[""], &["pods"], &[]),
                req("get", "", "pods", "p"),
                true,
            ),
            (
                rule(&["get"], &[""], &["pods"], &[]),
                req("list", "", "pods", ""),
                false,
            ),
            (
                rule(&["*"], &[""], &["pods"], &[]),
                req("delete", "", "pods", "p"),
                true,
            ),
            (
                rule(&["get"], &["apps"], &["pods"], &[]),
                req("get", "", "pods", "p"),
                false,
            ),
            (
                rule(&["get"], &["*"], &["deployments"], &[]),
                req("get", "apps", "deployments", "d"),
                true,
            ),
            (
                rule(&["get"], &[""], &["pods"], &[]),
                req("get", "", "pods/log", "p"),
                false,
            ),
            (
                rule(&["get"], &[""], &["pods/log"], &[]),
                req("get", "", "pods/log", "p"),
                true,
            ),
            (
                rule(&["get"], &[""], &["pods/log"], &[]),
                req("get", "", "pods", "p"),
                false,
            ),
            (
                rule(&["get"], &[""], &["*"], &[]),
                req("get", "", "pods/log", "p"),
                true,
            ),
            (
                rule(&["get"], &["*"], &["*/scale"], &[]),
                req("get", "apps", "deployments/scale", "d"),
                true,
            ),
            (
                rule(&["get"], &["*"], &["*/scale"], &[]),
                req("get", "apps", "deployments", "d"),
                false,
            ),
            (
                rule(&["get"], &[""], &["pods"], &["a"]),
                req("get", "", "pods", "a"),
                true,
            ),
            (
                rule(&["get"], &[""], &["pods"], &["a"]),
                req("get", "", "pods", "b"),
                false,
            ),
            (
                rule(&["list"], &[""], &["pods"], &["a"]),
                req("list", "", "pods", ""),
                false,
            ),
        ];
        for (rule, r, want) in cases {
            assert_eq!(allows(rule, r), *want, "{rule:?} {r:?}");
        }
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_trailing_star() {
        let mut r = rule(&["get"], &[], &[], &[]);
        r.non_resource_urls = Some(vec!["/healthz".into(), "/api/*".into()]);
        assert!(allows_path(&r, "get", "/healthz"));
        assert!(!allows_path(&r, "get", "/healthz/etcd"));
        assert!(allows_path(&r, "get", "/api/v1"));
        assert!(!allows_path(&r, "post", "/healthz"));
        r.non_resource_urls = Some(vec!["*".into()]);
        assert!(allows_path(&r, "get", "/anything"));
    }

    #[test]
    fn coverage_finds_what_the_owner_lacks() {
        let owned = [rule(&["get", "list"], &[""], &["pods"], &[])];
        let wanted = [rule(&["get", "delete"], &[""], &["pods"], &[])];
        let missing = uncovered(&owned, &wanted);
        assert_eq!(
            rules_to_string(&missing),
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#
        );
        let star = [rule(&["*"], &["*"], &["*"], &[])];
        assert!(uncovered(&star, &wanted).is_empty());
        let named = [rule(&["get"], &[""], &["pods"], &["a"])];
        assert!(uncovered(&named, &[rule(&["get"], &[""], &["pods"], &["a"])]).is_empty());
        assert_eq!(
            uncovered(&named, &[rule(&["get"], &[""], &["pods"], &[])]).len(),
            1
        );
        let two = uncovered(
            &[],
            &[rule(&["get", "list"], &["", "apps"], &["pods"], &[])],
        );
        assert_eq!(
            rules_to_string(&two),
            "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\" \"list\"]}\n{APIGroups:[\"apps\"], Resources:[\"pods\"], Verbs:[\"get\" \"list\"]}"
        );
    }
}
