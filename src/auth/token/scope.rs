//! The `scope` syntax of token requests and `WWW-Authenticate: Bearer`
//! challenges: `<type>:<name>:<action>[,<action>...]`.

use crate::auth::ResourceAccess;

/// Parses one `scope` value (`repository:a/b:pull,push`, `registry:catalog:*`);
/// `None` when malformed. The name runs from the first `:` to the last one,
/// so old-style names with a registry port (`localhost:5000/a`) keep it.
/// Actions are kept as given (unknown ones are for the policy to refuse);
/// empty entries between commas are dropped, and a scope with no action is
/// malformed. A resource class (`repository(plugin)`) stays part of the type.
pub fn parse_scope(scope: &str) -> Option<ResourceAccess> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let well_formed = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace());
    if !well_formed(kind) || !well_formed(name) || actions.chars().any(char::is_whitespace) {
        return None;
    }
    let actions: Vec<String> = actions
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if actions.is_empty() {
        return None;
    }
    Some(ResourceAccess {
        kind: kind.to_string(),
        name: name.to_string(),
        actions,
    })
}

/// Parses a `scope` value that may hold several scopes separated by spaces
/// (some clients send them so instead of repeating the parameter); `None`
/// when any of them is malformed.
pub fn parse_scopes(value: &str) -> Option<Vec<ResourceAccess>> {
    value.split_whitespace().map(parse_scope).collect()
}

/// Formats the scope string used in `WWW-Authenticate: Bearer ... scope="..."`
/// and understood by [`parse_scope`].
pub fn format_scope(access: &ResourceAccess) -> String {
    format!(
        "{}:{}:{}",
        access.kind,
        access.name,
        access.actions.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ra(kind: &str, name: &str, actions: &[&str]) -> ResourceAccess {
        ResourceAccess {
            kind: kind.into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn parse_and_format_table() {
        let table = [
            ("repository:a/b:pull", ra("repository", "a/b", &["pull"])),
            (
                "repository:a/b:pull,push",
                ra("repository", "a/b", &["pull", "push"]),
            ),
            (
                "repository:localhost:5000/a:pull",
                ra("repository", "localhost:5000/a", &["pull"]),
            ),
            ("registry:catalog:*", ra("registry", "catalog", &["*"])),
            (
                "repository:team/x:delete,pull,push",
                ra("repository", "team/x", &["delete", "pull", "push"]),
            ),
            (
                "repository(plugin):a/b:pull",
                ra("repository(plugin)", "a/b", &["pull"]),
            ),
        ];
        for (text, want) in table {
            let got = parse_scope(text);
            assert_eq!(got.as_ref(), Some(&want), "{text}");
            assert_eq!(format_scope(&want), text);
        }
        // Empty entries between commas are dropped.
        assert_eq!(
            parse_scope("repository:a:pull,,push,"),
            Some(ra("repository", "a", &["pull", "push"]))
        );
    }

    #[test]
    fn malformed_scopes() {
        for text in [
            "",
            "repository",
            "repository:a/b",
            "repository:a/b:",
            "repository::pull",
            ":a/b:pull",
            "repository:a/b:,",
            "repository:a b:pull",
            "repository:a/b:pull push",
            " repository:a/b:pull",
        ] {
            assert_eq!(parse_scope(text), None, "{text:?}");
        }
    }

    #[test]
    fn several_scopes_in_one_value() {
        assert_eq!(
            parse_scopes("repository:a:pull  repository:b:push,pull"),
            Some(vec![
                ra("repository", "a", &["pull"]),
                ra("repository", "b", &["push", "pull"])
            ])
        );
        assert_eq!(parse_scopes(""), Some(vec![]));
        assert_eq!(parse_scopes("repository:a:pull bogus"), None);
    }
}
