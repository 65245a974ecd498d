//! Access policies: which actions a caller may take on which repositories,
//! from the `access:` section. Rules add up (union); nothing is allowed that
//! no rule grants.

use std::collections::HashMap;

use super::Action;
use crate::config::auth::{AccessConfig, AccessRule};

/// A small set of actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionSet(u8);

impl ActionSet {
    /// No action.
    pub const NONE: ActionSet = ActionSet(0);
    /// Every action.
    pub const ALL: ActionSet = ActionSet(0b111);

    fn bit(a: Action) -> u8 {
        match a {
            Action::Pull => 1,
            Action::Push => 2,
            Action::Delete => 4,
        }
    }

    /// True when `a` is in the set.
    pub fn contains(self, a: Action) -> bool {
        self.0 & Self::bit(a) != 0
    }

    /// The set with `a` added.
    pub fn with(self, a: Action) -> ActionSet {
        ActionSet(self.0 | Self::bit(a))
    }

    /// Both sets together.
    pub fn union(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 | other.0)
    }

    /// True when empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions, in pull, push, delete order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    /// The actions a token grants: the names berth knows, `*` meaning all,
    /// and anything else ignored, as registry:2's token access set does (an
    /// unknown action grants nothing by itself but does not void the known
    /// ones next to it). For configuration, where a typo must be an error,
    /// use [`ActionSet::parse`].
    pub fn granted<'a>(names: impl IntoIterator<Item = &'a str>) -> ActionSet {
        names.into_iter().fold(ActionSet::NONE, |set, n| {
            if n == "*" {
                ActionSet::ALL
            } else {
                n.parse::<Action>()
                    .map_or(set, |a| set.union(ActionSet::NONE.with(a)))
            }
        })
    }

    /// Parses action names; `*` means all.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<ActionSet, String> {
        names.into_iter().try_fold(ActionSet::NONE, |set, n| {
            if n == "*" {
                Ok(ActionSet::ALL)
            } else {
                n.parse::<Action>()
                    .map(|a| set.union(ActionSet::NONE.with(a)))
            }
        })
    }
}

#[derive(Debug, Clone)]
struct Rule {
    patterns: Vec<String>,
    actions: ActionSet,
}

impl Rule {
    fn compile(rule: &AccessRule, at: &str) -> Result<Rule, String> {
        let actions = ActionSet::parse(rule.actions.iter().map(String::as_str))
            .map_err(|e| format!("{at}.actions: {e}"))?;
        if rule.repositories.is_empty() {
            return Err(format!("{at}.repositories: at least one pattern is needed"));
        }
        Ok(Rule {
            patterns: rule.repositories.clone(),
            actions,
        })
    }

    fn grant(&self, repo: &str) -> ActionSet {
        if self.patterns.iter().any(|p| glob_match(p, repo)) {
            self.actions
        } else {
            ActionSet::NONE
        }
    }
}

fn compile_all(rules: &[AccessRule], at: &str) -> Result<Vec<Rule>, String> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| Rule::compile(r, &format!("{at}[{i}]")))
        .collect()
}

#[derive(Debug, Clone)]
struct Rules {
    anonymous: Vec<Rule>,
    authenticated: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    /// Per user, the rules of every group they are in.
    group_rules: HashMap<String, Vec<Rule>>,
}

/// The effective policy.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Option<Rules>,
    auth_enabled: bool,
}

impl Policy {
    /// Builds the policy. Without an `access` section: with no authentication
    /// everyone may do everything; with authentication, every authenticated
    /// user may do everything and anonymous callers nothing.
    /// Errors name the offending key (`access.users.bob[0].actions: ...`).
    pub fn from_config(
        access: Option<&AccessConfig>,
        auth_enabled: bool,
    ) -> Result<Policy, String> {
        let Some(a) = access else {
            return Ok(Policy {
                rules: None,
                auth_enabled,
            });
        };
        let mut users = HashMap::new();
        for (u, r) in &a.users {
            users.insert(u.clone(), compile_all(r, &format!("access.users.{u}"))?);
        }
        let mut group_rules: HashMap<String, Vec<Rule>> = HashMap::new();
        for (g, group) in &a.groups {
            let rules = compile_all(&group.rules, &format!("access.groups.{g}.rules"))?;
            for m in &group.members {
                group_rules
                    .entry(m.clone())
                    .or_default()
                    .extend(rules.iter().cloned());
            }
        }
        Ok(Policy {
            rules: Some(Rules {
                anonymous: compile_all(&a.anonymous, "access.anonymous")?,
                authenticated: compile_all(&a.authenticated, "access.authenticated")?,
                users,
                group_rules,
            }),
            auth_enabled,
        })
    }

    /// True when everyone may do everything (no checks needed).
    pub fn is_open(&self) -> bool {
        self.rules.is_none() && !self.auth_enabled
    }

    /// True when anonymous callers have at least one rule.
    pub fn anonymous_has_rules(&self) -> bool {
        match &self.rules {
            Some(r) => !r.anonymous.is_empty(),
            None => !self.auth_enabled,
        }
    }

    /// What `user` (None: anonymous) may do on `repo`.
    pub fn allowed(&self, user: Option<&str>, repo: &str) -> ActionSet {
        let Some(rules) = &self.rules else {
            return if user.is_some() || !self.auth_enabled {
                ActionSet::ALL
            } else {
                ActionSet::NONE
            };
        };
        let grant = |rs: &[Rule]| {
            rs.iter()
                .fold(ActionSet::NONE, |acc, r| acc.union(r.grant(repo)))
        };
        let mut set = grant(&rules.anonymous);
        if let Some(u) = user {
            set = set.union(grant(&rules.authenticated));
            if let Some(rs) = rules.users.get(u) {
                set = set.union(grant(rs));
            }
            if let Some(rs) = rules.group_rules.get(u) {
                set = set.union(grant(rs));
            }
        }
        set
    }
}

/// Matches a repository name against a glob: `*` matches within one path
/// component, `**` across components, everything else literally.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=n.len()).any(|i| go(rest, &n[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                let limit = n.iter().position(|&c| c == b'/').unwrap_or(n.len());
                (0..=limit).any(|i| go(rest, &n[i..]))
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::auth::AccessGroup;

    #[test]
    fn globs() {
        let table = [
            ("*", "a", true),
            ("*", "a/b", false),
            ("**", "a/b/c", true),
            ("team/*", "team/app", true),
            ("team/*", "team/app/sub", false),
            ("team/**", "team/app/sub", true),
            ("team/**", "teamx/app", false),
            ("public/*-base", "public/ubuntu-base", true),
            ("public/*-base", "public/ubuntu", false),
            ("exact/name", "exact/name", true),
            ("exact/name", "exact/names", false),
            ("**/cache", "a/b/cache", true),
        ];
        for (p, n, want) in table {
            assert_eq!(glob_match(p, n), want, "{p} ~ {n}");
        }
    }

    #[test]
    fn granted_actions_ignore_unknown_names() {
        let pull = ActionSet::NONE.with(Action::Pull);
        assert_eq!(ActionSet::granted(["pull", "bogus"]), pull);
        assert_eq!(ActionSet::granted(["bogus", "Push"]), ActionSet::NONE);
        assert_eq!(ActionSet::granted(["bogus", "*"]), ActionSet::ALL);
        assert_eq!(ActionSet::granted([]), ActionSet::NONE);
        // Configuration stays strict.
        assert!(ActionSet::parse(["pull", "bogus"]).is_err());
    }

    fn rule(repos: &[&str], actions: &[&str]) -> AccessRule {
        AccessRule {
            repositories: repos.iter().map(|s| s.to_string()).collect(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn defaults_without_access_section() {
        let open = Policy::from_config(None, false).unwrap();
        assert!(open.is_open());
        assert_eq!(open.allowed(None, "x"), ActionSet::ALL);
        let authed = Policy::from_config(None, true).unwrap();
        assert!(!authed.is_open());
        assert_eq!(authed.allowed(None, "x"), ActionSet::NONE);
        assert_eq!(authed.allowed(Some("u"), "x"), ActionSet::ALL);
    }

    #[test]
    fn rules_add_up() {
        let mut access = AccessConfig {
            anonymous: vec![rule(&["public/**"], &["pull"])],
            authenticated: vec![rule(&["shared/*"], &["pull", "push"])],
            ..Default::default()
        };
        access
            .users
            .insert("alice".into(), vec![rule(&["alice/**"], &["*"])]);
        access.groups.insert(
            "ops".into(),
            AccessGroup {
                members: vec!["bob".into()],
                rules: vec![rule(&["**"], &["delete"])],
            },
        );
        let p = Policy::from_config(Some(&access), true).unwrap();
        let pull = ActionSet::NONE.with(Action::Pull);
        let pull_push = pull.with(Action::Push);
        assert_eq!(p.allowed(None, "public/a/b"), pull);
        assert_eq!(p.allowed(None, "shared/x"), ActionSet::NONE);
        assert_eq!(p.allowed(Some("carol"), "shared/x"), pull_push);
        assert_eq!(p.allowed(Some("carol"), "public/x"), pull);
        assert_eq!(p.allowed(Some("alice"), "alice/deep/repo"), ActionSet::ALL);
        assert_eq!(p.allowed(Some("carol"), "alice/deep/repo"), ActionSet::NONE);
        assert_eq!(
            p.allowed(Some("bob"), "alice/x"),
            ActionSet::NONE.with(Action::Delete)
        );
        assert!(p.anonymous_has_rules());
    }

    #[test]
    fn bad_actions_name_the_key() {
        let mut access = AccessConfig::default();
        access
            .users
            .insert("bob".into(), vec![rule(&["x"], &["admin"])]);
        let e = Policy::from_config(Some(&access), true).unwrap_err();
        assert!(e.starts_with("access.users.bob[0].actions:"), "{e}");
        let access = AccessConfig {
            anonymous: vec![rule(&[], &["pull"])],
            ..Default::default()
        };
        let e = Policy::from_config(Some(&access), false).unwrap_err();
        assert!(e.starts_with("access.anonymous[0].repositories"), "{e}");
    }
}
