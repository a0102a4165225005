//! The action type of a CloudTrail `eventName`.
//!
//! AWS API names are a verb followed by a noun in CamelCase, so the verb prefix decides.
//! Security verbs are tried before the CRUD prefixes they overlap: `PutUserPolicy` is a
//! grant before it is a put.

use crate::proto::ActionType;

/// Names whose type no prefix rule gives.
const EXACT: [(&str, ActionType); 9] = [
    ("ConsoleLogin", ActionType::Login),
    ("Authenticate", ActionType::Login),
    ("UserAuthentication", ActionType::Login),
    ("AddUserToGroup", ActionType::Grant),
    ("AddPermission", ActionType::Grant),
    ("CreateGrant", ActionType::Grant),
    ("RemoveUserFromGroup", ActionType::Revoke),
    ("RemovePermission", ActionType::Revoke),
    ("RetireGrant", ActionType::Revoke),
];

/// Policies that grant permissions, as the end of a `Put…`/`Delete…` name; other
/// policies such as `PutScalingPolicy` configure a resource and stay updates.
const PERMISSION_POLICIES: [&str; 7] = [
    "UserPolicy",
    "RolePolicy",
    "GroupPolicy",
    "BucketPolicy",
    "KeyPolicy",
    "ResourcePolicy",
    "RepositoryPolicy",
];

/// Verb prefixes in the order they are tried.
const PREFIXES: [(&str, ActionType); 28] = [
    ("Assume", ActionType::Login),
    ("AuthorizeSecurityGroup", ActionType::Grant),
    ("Grant", ActionType::Grant),
    ("Revoke", ActionType::Revoke),
    ("SendCommand", ActionType::Execute),
    ("StartSession", ActionType::Execute),
    ("ResumeSession", ActionType::Execute),
    ("Invoke", ActionType::Execute),
    ("Converse", ActionType::Execute),
    ("Export", ActionType::Export),
    ("BatchGet", ActionType::Read),
    ("Get", ActionType::Read),
    ("List", ActionType::Read),
    ("Describe", ActionType::Read),
    ("Head", ActionType::Read),
    ("Lookup", ActionType::Read),
    ("Create", ActionType::Create),
    ("Run", ActionType::Create),
    ("Register", ActionType::Create),
    ("Import", ActionType::Create),
    ("Upload", ActionType::Create),
    ("Delete", ActionType::Delete),
    ("Remove", ActionType::Delete),
    ("Terminate", ActionType::Delete),
    ("Deregister", ActionType::Delete),
    ("Update", ActionType::Update),
    ("Modify", ActionType::Update),
    ("Put", ActionType::Update),
];

/// Prefixes of updates tried last, after the policy rules.
const UPDATE_PREFIXES: [&str; 7] = [
    "Set", "Enable", "Disable", "Attach", "Detach", "Tag", "Untag",
];

/// Returns the action type of `event_name`. A name that matches no rule is a read when
/// CloudTrail marks the event `readOnly`, else other.
pub(super) fn action_type(event_name: &str, read_only: bool) -> ActionType {
    if let Some((_, kind)) = EXACT.iter().find(|(name, _)| *name == event_name) {
        return *kind;
    }
    if let Some(kind) = policy_change(event_name) {
        return kind;
    }
    if let Some((_, kind)) = PREFIXES
        .iter()
        .find(|(prefix, _)| has_verb(event_name, prefix))
    {
        return *kind;
    }
    if UPDATE_PREFIXES
        .iter()
        .any(|prefix| has_verb(event_name, prefix))
    {
        return ActionType::Update;
    }
    if read_only {
        ActionType::Read
    } else {
        ActionType::Other
    }
}

/// Returns grant or revoke for attaching, detaching, putting or deleting a permission
/// policy (`AttachRolePolicy`, `DetachUserPolicy`, `PutBucketPolicy`, `DeleteRolePolicy`).
fn policy_change(event_name: &str) -> Option<ActionType> {
    let permission_policy = PERMISSION_POLICIES
        .iter()
        .any(|suffix| event_name.ends_with(suffix));
    let any_policy = event_name.ends_with("Policy");
    if has_verb(event_name, "Attach") && any_policy {
        Some(ActionType::Grant)
    } else if has_verb(event_name, "Detach") && any_policy {
        Some(ActionType::Revoke)
    } else if has_verb(event_name, "Put") && permission_policy {
        Some(ActionType::Grant)
    } else if has_verb(event_name, "Delete") && permission_policy {
        Some(ActionType::Revoke)
    } else {
        None
    }
}

/// Returns true when `name` starts with the word `verb`: the next character starts a
/// new CamelCase word, so `Set` matches `SetTopicAttributes` but not `SetupDevice`.
fn has_verb(name: &str, verb: &str) -> bool {
    match name.strip_prefix(verb) {
        Some(rest) => rest
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_type_table() {
        use ActionType::*;
        let cases = [
            ("GetSecretValue", Read),
            ("BatchGetSecretValue", Read),
            ("ListAttachedRolePolicies", Read),
            ("DescribeInstances", Read),
            ("HeadObject", Read),
            ("LookupEvents", Read),
            ("GetCallerIdentity", Read),
            // Decided: reading the encrypted administrator password is a read, like GetSecretValue.
            ("GetPasswordData", Read),
            ("CreateGroup", Create),
            ("CreateFunction20150331", Create),
            ("RunInstances", Create),
            ("RegisterTaskDefinition", Create),
            ("ImportKeyPair", Create),
            ("UploadSSHPublicKey", Create),
            ("UpdateUser", Update),
            ("UpdateAssumeRolePolicy", Update),
            ("ModifySnapshotAttribute", Update),
            ("PutBucketVersioning", Update),
            ("PutObject", Update),
            ("PutScalingPolicy", Update),
            ("SetTopicAttributes", Update),
            ("EnableMFADevice", Update),
            ("DisableKey", Update),
            ("AttachVolume", Update),
            ("DetachVolume", Update),
            ("TagResource", Update),
            ("DeleteBucket", Delete),
            ("DeleteScalingPolicy", Delete),
            ("TerminateInstances", Delete),
            ("DeregisterImage", Delete),
            ("ConsoleLogin", Login),
            ("AssumeRole", Login),
            ("AssumeRoleWithSAML", Login),
            ("AssumeRoleWithWebIdentity", Login),
            ("Authenticate", Login),
            ("UserAuthentication", Login),
            ("AttachGroupPolicy", Grant),
            ("AttachUserPolicy", Grant),
            ("PutUserPolicy", Grant),
            ("PutBucketPolicy", Grant),
            ("AuthorizeSecurityGroupIngress", Grant),
            ("AuthorizeSecurityGroupEgress", Grant),
            ("AddUserToGroup", Grant),
            ("GrantPermissions", Grant),
            ("CreateGrant", Grant),
            ("DetachRolePolicy", Revoke),
            ("DeleteUserPolicy", Revoke),
            ("RevokeSecurityGroupIngress", Revoke),
            ("RemoveUserFromGroup", Revoke),
            ("SendCommand", Execute),
            ("StartSession", Execute),
            ("Invoke", Execute),
            ("InvokeModel", Execute),
            ("InvokeModelWithResponseStream", Execute),
            ("Converse", Execute),
            ("ConverseStream", Execute),
            ("ExportSnapshot", Export),
            ("action", Other),
            ("SetupDevice", Other),
            ("StopInstances", Other),
        ];
        for (name, expected) in cases {
            assert_eq!(action_type(name, false), expected, "{name}");
        }
    }

    #[test]
    fn unknown_read_only_is_read() {
        assert_eq!(action_type("SearchResources", true), ActionType::Read);
        assert_eq!(action_type("SearchResources", false), ActionType::Other);
        // A known verb wins over readOnly.
        assert_eq!(action_type("CreateGroup", true), ActionType::Create);
    }
}
