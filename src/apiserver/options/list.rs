//! Validation of the list and watch query options: their types, and those that depend on each
//! other (`resourceVersionMatch`, `resourceVersion`, `continue`, `sendInitialEvents`).
//!
//! Follows apimachinery's `meta/internalversion/validation` (`ValidateListOptions`): the
//! failures are field errors of a `ListOptions.meta.k8s.io` object, answered as one 422.

use crate::apiserver::request::Query;
use crate::meta::ApiError;
use crate::registry::FieldError;

const MATCH: &str = "resourceVersionMatch";
const EXACT: &str = "Exact";
const NOT_OLDER_THAN: &str = "NotOlderThan";

fn present<'q>(query: &'q Query, key: &str) -> Option<&'q str> {
    query.get(key).filter(|v| !v.is_empty())
}

/// Checks the `ListOptions` of a list that the handler does not otherwise read, so that one
/// that does not parse (`timeoutSeconds=abc`) fails the request as upstream's parameter
/// decoding does (400), before anything else is looked at.
pub fn check_types(query: &Query) -> Result<(), ApiError> {
    query.count("timeoutSeconds")?;
    query.count("limit")?;
    for flag in ["watch", "allowWatchBookmarks", "sendInitialEvents"] {
        query.flag(flag)?;
    }
    Ok(())
}

/// Checks a list's options; true when the list must be served exactly at `resourceVersion`.
pub fn check_list(query: &Query) -> Result<bool, ApiError> {
    let mut errors = Vec::new();
    let rv = present(query, "resourceVersion");
    let Some(matching) = present(query, MATCH) else {
        if query.get("sendInitialEvents").is_some() {
            errors.push(FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            ));
        }
        return reject(errors).map(|()| false);
    };
    if rv.is_none() {
        errors.push(FieldError::forbidden(
            MATCH,
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if present(query, "continue").is_some() {
        errors.push(FieldError::forbidden(
            MATCH,
            "resourceVersionMatch is forbidden when continue is provided",
        ));
    }
    if matching != EXACT && matching != NOT_OLDER_THAN {
        errors.push(FieldError::not_supported(
            MATCH,
            matching,
            &[EXACT, NOT_OLDER_THAN, ""],
        ));
    }
    if matching == EXACT && rv == Some("0") {
        errors.push(FieldError::forbidden(
            MATCH,
            "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        ));
    }
    if query.get("sendInitialEvents").is_some() {
        errors.push(FieldError::forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    reject(errors).map(|()| matching == EXACT)
}

/// Checks a watch's options: `resourceVersionMatch` is only for a watch that sends its
/// initial events, and then only `NotOlderThan`.
pub fn check_watch(query: &Query) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let matching = present(query, MATCH);
    let initial_events = query.get("sendInitialEvents").is_some();
    if initial_events && matching != Some(NOT_OLDER_THAN) {
        errors.push(FieldError::forbidden(
            MATCH,
            format!("sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}"),
        ));
    }
    if let Some(matching) = matching {
        if !initial_events {
            errors.push(FieldError::forbidden(
                MATCH,
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if matching != NOT_OLDER_THAN {
            errors.push(FieldError::not_supported(
                MATCH,
                matching,
                &[NOT_OLDER_THAN],
            ));
        }
        if present(query, "continue").is_some() {
            errors.push(FieldError::forbidden(
                MATCH,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    reject(errors)
}

/// The 422 upstream answers invalid list options with.
fn reject(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        return Ok(());
    }
    let causes = errors.iter().map(FieldError::cause).collect();
    Err(super::invalid_options("ListOptions", causes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(q: &str) -> Result<bool, ApiError> {
        check_list(&Query::parse(Some(q)))
    }

    fn watch(q: &str) -> Result<(), ApiError> {
        check_watch(&Query::parse(Some(q)))
    }

    #[test]
    fn list_options_are_checked_as_upstream() {
        assert_eq!(list("").ok(), Some(false));
        assert_eq!(
            list("resourceVersion=5&resourceVersionMatch=Exact").ok(),
            Some(true)
        );
        assert_eq!(
            list("resourceVersion=5&resourceVersionMatch=NotOlderThan").ok(),
            Some(false)
        );
        let bogus = list("resourceVersion=5&resourceVersionMatch=Bogus").expect_err("bogus");
        assert_eq!(bogus.code, 422);
        assert_eq!(
            bogus.message,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Bogus\": supported values: \"Exact\", \"NotOlderThan\", \"\""
        );
        let no_rv = list("resourceVersionMatch=Exact").expect_err("no resourceVersion");
        assert_eq!(no_rv.code, 422);
        assert_eq!(
            no_rv.message,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
        );
        assert_eq!(
            list("resourceVersionMatch=NotOlderThan").map_err(|e| e.code),
            Err(422)
        );
        assert_eq!(
            list("resourceVersion=0&resourceVersionMatch=Exact").map_err(|e| e.code),
            Err(422)
        );
    }

    #[test]
    fn watch_options_are_checked_as_upstream() {
        assert!(watch("").is_ok());
        assert!(watch("sendInitialEvents=true&resourceVersionMatch=NotOlderThan").is_ok());
        let exact = watch("resourceVersion=5&resourceVersionMatch=Exact").expect_err("exact");
        assert_eq!(exact.code, 422);
        assert_eq!(
            exact.message,
            "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided, resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\"]"
        );
        assert_eq!(
            watch("resourceVersionMatch=NotOlderThan").map_err(|e| e.code),
            Err(422)
        );
        assert_eq!(
            watch("sendInitialEvents=true").map_err(|e| e.code),
            Err(422)
        );
    }
}
