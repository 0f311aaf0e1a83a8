//! The structured `metav1.LabelSelector` (matchLabels + matchExpressions) as workload kinds
//! carry it: matching a label set and printing it as upstream's `FormatLabelSelector`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Upstream `LabelSelectorAsSelector(...).Matches`: every matchLabels pair and every
/// expression must hold. An empty selector matches everything (callers that must refuse an
/// empty selector check [`is_empty`] first). An unknown operator matches nothing, as upstream
/// refuses to build such a selector.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let actual = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => actual.is_some_and(|v| values.contains(v)),
            "NotIn" => actual.is_none_or(|v| !values.contains(v)),
            "Exists" => actual.is_some(),
            "DoesNotExist" => actual.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// Whether the selector has neither labels nor expressions.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty())
}

/// Upstream `metav1.FormatLabelSelector`: `k=v` pairs then expressions, comma-separated;
/// `<none>` when empty.
pub fn format(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let mut values = e.values.clone().unwrap_or_default();
        values.sort();
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({})", e.key, values.join(",")),
            "NotIn" => format!("{} notin ({})", e.key, values.join(",")),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({})", e.key, values.join(",")),
        });
    }
    if parts.is_empty() {
        "<none>".to_string()
    } else {
        parts.join(",")
    }
}

/// The selector as a `labelSelector` query parameter (the same text as [`format`], but empty
/// for an empty selector).
pub fn to_query(selector: &LabelSelector) -> String {
    if is_empty(selector) {
        String::new()
    } else {
        format(selector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(ml: &[(&str, &str)], exprs: &[(&str, &str, &[&str])]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(ml)),
            match_expressions: Some(
                exprs
                    .iter()
                    .map(|(k, op, vs)| LabelSelectorRequirement {
                        key: k.to_string(),
                        operator: op.to_string(),
                        values: Some(vs.iter().map(|v| v.to_string()).collect()),
                    })
                    .collect(),
            ),
        }
    }

    type Case<'a> = (LabelSelector, &'a [(&'a str, &'a str)], bool);

    #[test]
    fn selectors_match_as_upstream() {
        let cases: &[Case] = &[
            (sel(&[("app", "x")], &[]), &[("app", "x"), ("b", "c")], true),
            (sel(&[("app", "x")], &[]), &[("app", "y")], false),
            (sel(&[], &[("t", "In", &["a", "b"])]), &[("t", "b")], true),
            (sel(&[], &[("t", "NotIn", &["a"])]), &[], true),
            (sel(&[], &[("t", "Exists", &[])]), &[], false),
            (sel(&[], &[("t", "DoesNotExist", &[])]), &[], true),
            (sel(&[], &[]), &[("any", "thing")], true),
        ];
        for (s, l, want) in cases {
            assert_eq!(matches(s, &labels(l)), *want, "{s:?} {l:?}");
        }
    }

    #[test]
    fn selectors_print_as_upstream() {
        assert_eq!(
            format(&sel(&[("app", "x")], &[("t", "In", &["b", "a"])])),
            "app=x,t in (a,b)"
        );
        assert_eq!(format(&sel(&[], &[])), "<none>");
        assert_eq!(to_query(&sel(&[], &[])), "");
    }
}
