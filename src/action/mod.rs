//! Remediation: the typed action catalog, the guards, the approval gate and the proposals built
//! from an incident's evidence. The agent proposes; the operator disposes.
//!
//! | module | does |
//! |---|---|
//! | [`catalog`] | the fixed set of action kinds, their risk, dry-run and undo, typed targets and the exact API call each previews |
//! | [`cidr`] | IPv4/IPv6 blocks for deny rules |
//! | [`guard`] | refusals no confirmation overrides: private ranges, too-broad blocks, the operator's address, stormwatch's own key, auto-scaled or protected instances |
//! | [`policy`] | the approval gate: allow-list, read-only mode, rate limit, keystroke or typed-id confirmation |
//! | [`execute`] | live lookups that fill in what only AWS knows, then the audited call: state first, dry run, request row committed before the call; verification and undo |
//! | [`rank`] | the contextual bandit that orders proposals by what fixed similar incidents |
//! | [`propose`] | candidate actions from an incident's entities and keys, and the check that any action is grounded in them |
//!
//! The console's side of the gate (suggestions, confirm popup, audit pane) is [`crate::ui::approval`].

pub mod catalog;
pub mod cidr;
pub mod execute;
pub mod guard;
pub mod policy;
pub mod propose;
pub mod rank;
