use serde_json::{json, Value};

use super::*;

fn identity(value: Value) -> UserIdentity {
    serde_json::from_value(value).unwrap()
}

#[test]
fn actor_type_by_identity_type() {
    let cases = [
        (
            json!({"type": "IAMUser", "userName": "deploy-bot"}),
            ActorType::User,
        ),
        (
            json!({"type": "Root", "arn": "arn:aws:iam::111122223333:root"}),
            ActorType::User,
        ),
        (json!({"type": "IdentityCenterUser"}), ActorType::User),
        (
            json!({"type": "Unknown", "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
            ActorType::User,
        ),
        (
            json!({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}),
            ActorType::System,
        ),
        (
            json!({"type": "AWSAccount", "accountId": "444455556666"}),
            ActorType::System,
        ),
        (
            json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_1a2b/dana@example.com"}),
            ActorType::User,
        ),
        (
            json!({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/ec2-role/i-0123456789abcdef0"}),
            ActorType::ServiceAccount,
        ),
        (
            json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:erin@example.com"}),
            ActorType::User,
        ),
        (
            json!({"type": "FederatedUser", "principalId": "111122223333:ci-runner"}),
            ActorType::ServiceAccount,
        ),
        (
            json!({"type": "SAMLUser", "userName": "frank@corp.example.com"}),
            ActorType::User,
        ),
        (
            json!({"type": "WebIdentityUser", "userName": "accounts.google.com:1234"}),
            ActorType::ServiceAccount,
        ),
        (json!({"type": "Directory"}), ActorType::ServiceAccount),
        (json!({}), ActorType::ServiceAccount),
    ];
    for (value, expected) in cases {
        assert_eq!(actor_type(&identity(value.clone())), expected, "{value}");
    }
}

#[test]
fn actor_id_fallbacks() {
    let cases = [
        (
            json!({"arn": "arn:aws:iam::1:user/Alice", "principalId": "AIDA1"}),
            "arn:aws:iam::1:user/Alice",
        ),
        (json!({"arn": "", "principalId": "AIDA1"}), "AIDA1"),
        (
            json!({"type": "IdentityCenterUser", "arn": "", "onBehalfOf": {"userId": "94a8-1234"}}),
            "94a8-1234",
        ),
        (
            json!({"type": "SAMLUser", "userName": "frank@corp.example.com"}),
            "frank@corp.example.com",
        ),
        (
            json!({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}),
            "ec2.amazonaws.com",
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(
            actor(&identity(value.clone()), None).unwrap().id,
            expected,
            "{value}"
        );
    }
    let error = actor(&identity(json!({"type": "IAMUser"})), None).unwrap_err();
    assert!(matches!(error, MapError::Missing { .. }), "{error}");
    let long = identity(json!({"arn": format!("arn:aws:iam::1:user/{}", "a".repeat(250))}));
    assert!(matches!(actor(&long, None), Err(MapError::TooLong { .. })));
}

#[test]
fn display_name_sources() {
    let user = identity(
        json!({"type": "IAMUser", "arn": "arn:aws:iam::1:user/Alice", "userName": "Alice"}),
    );
    assert_eq!(actor(&user, None).unwrap().display_name, "Alice");
    let sso = identity(json!({
        "type": "AssumedRole",
        "arn": "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_1a2b/dana@example.com",
        "sessionContext": {"sessionIssuer": {"userName": "AWSReservedSSO_Admin_1a2b"}}
    }));
    assert_eq!(actor(&sso, None).unwrap().display_name, "dana@example.com");
    let workload = identity(json!({
        "type": "AssumedRole",
        "arn": "arn:aws:sts::1:assumed-role/ec2-role/i-0abc",
        "sessionContext": {"sessionIssuer": {"userName": "ec2-role"}}
    }));
    assert_eq!(actor(&workload, None).unwrap().display_name, "ec2-role");
    let sign_in = identity(json!({"type": "IdentityCenterUser", "onBehalfOf": {"userId": "u-1"}}));
    assert_eq!(
        actor(&sign_in, Some("gina@example.com"))
            .unwrap()
            .display_name,
        "gina@example.com"
    );
}

#[test]
fn source_identity_is_the_impersonator() {
    let session = identity(json!({
        "type": "AssumedRole",
        "arn": "arn:aws:sts::1:assumed-role/deployer/build-77",
        "sessionContext": {
            "sourceIdentity": "hana@example.com",
            "sessionIssuer": {"arn": "arn:aws:iam::1:role/deployer", "userName": "deployer"}
        }
    }));
    let actor = actor(&session, None).unwrap();
    let impersonator = actor.impersonator.unwrap();
    assert_eq!(impersonator.id, "hana@example.com");
    assert_eq!(impersonator.r#type, ActorType::User as i32);
    let without = identity(json!({
        "type": "AssumedRole",
        "arn": "arn:aws:sts::1:assumed-role/deployer/build-77",
        "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/deployer"}}
    }));
    assert_eq!(super::actor(&without, None).unwrap().impersonator, None);
}

#[test]
fn email_shape() {
    assert!(looks_like_email("a@b.co"));
    assert!(!looks_like_email("i-0123456789abcdef0"));
    assert!(!looks_like_email("@b.co"));
    assert!(!looks_like_email("a@localhost"));
    assert!(!looks_like_email("a@.co"));
}
