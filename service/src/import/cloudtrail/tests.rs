use serde_json::json;

use super::*;
use crate::event::EventRecord;
use crate::proto::{ActionType, ActorType};

fn create_group() -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE0000000001",
            "arn": "arn:aws:iam::111122223333:user/ops-admin",
            "accountId": "111122223333",
            "accessKeyId": "AKIAEXAMPLE000000001",
            "userName": "ops-admin"
        },
        "eventTime": "2026-05-06T07:08:09Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateGroup",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.44",
        "userAgent": "aws-cli/2.22.0",
        "requestParameters": {"groupName": "auditors"},
        "responseElements": {"group": {"groupName": "auditors", "arn": "arn:aws:iam::111122223333:group/auditors"}},
        "requestID": "4e1c2a9b-5d6f-4a3b-8c7d-0e9f1a2b3c4d",
        "eventID": "a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d",
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "clientProvidedHostHeader": "iam.amazonaws.com"}
    })
}

fn event(value: Value) -> OperationEvent {
    match map(value).unwrap() {
        RecordOutcome::Event(event) => *event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn metadata(event: &OperationEvent) -> Value {
    serde_json::from_str(&event.metadata_json).unwrap()
}

#[test]
fn record_maps_every_field() {
    let mapped = event(create_group());
    assert_eq!(mapped.event_id, "a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d");
    assert_eq!(mapped.occurred_at.unwrap().seconds, 1_778_051_289);
    assert_eq!(mapped.service, "iam.amazonaws.com");
    assert_eq!(mapped.tenant, "111122223333");

    let actor = mapped.actor.as_ref().unwrap();
    assert_eq!(actor.id, "arn:aws:iam::111122223333:user/ops-admin");
    assert_eq!(actor.r#type, ActorType::User as i32);
    assert_eq!(actor.display_name, "ops-admin");
    assert_eq!(actor.ip, "192.0.2.44");
    assert_eq!(actor.user_agent, "aws-cli/2.22.0");

    assert_eq!(mapped.action, "iam.CreateGroup");
    assert_eq!(mapped.action_type, ActionType::Create as i32);
    let target = mapped.target.as_ref().unwrap();
    assert_eq!(
        (target.r#type.as_str(), target.id.as_str()),
        ("AWS::IAM::Group", "auditors")
    );
    assert_eq!(
        mapped.outcome.as_ref().unwrap().result,
        ResultCode::Success as i32
    );
    assert_eq!(mapped.request_id, "4e1c2a9b-5d6f-4a3b-8c7d-0e9f1a2b3c4d");

    let metadata = metadata(&mapped);
    assert_eq!(metadata["awsRegion"], "us-east-1");
    assert_eq!(metadata["eventType"], "AwsApiCall");
    assert_eq!(metadata["readOnly"], false);
    assert_eq!(metadata["requestParameters"]["groupName"], "auditors");
    assert_eq!(metadata["tlsDetails"]["tlsVersion"], "TLSv1.3");
    assert!(metadata.get("sourceIPAddress").is_none());
    EventRecord::from_event(&mapped).expect("the mapped event passes the ingest validator");
}

#[test]
fn digest_is_skipped() {
    let digest = json!({
        "awsAccountId": "111122223333",
        "digestStartTime": "2026-05-06T06:00:00Z",
        "digestEndTime": "2026-05-06T07:00:00Z",
        "digestS3Bucket": "trail-bucket",
        "logFiles": []
    });
    assert!(matches!(
        map(digest).unwrap(),
        RecordOutcome::Skipped(DIGEST_REASON)
    ));
}

#[test]
fn error_codes() {
    let cases = [
        ("AccessDenied", ResultCode::Denied),
        ("Client.UnauthorizedOperation", ResultCode::Denied),
        ("AccessDeniedException", ResultCode::Denied),
        ("Forbidden", ResultCode::Denied),
        ("EntityAlreadyExistsException", ResultCode::Failure),
        ("TrailNotFoundException", ResultCode::Failure),
        ("500", ResultCode::Failure),
        ("200", ResultCode::Success),
    ];
    for (code, expected) in cases {
        let mut value = create_group();
        value["errorCode"] = json!(code);
        value["errorMessage"] = json!("details");
        let outcome = event(value).outcome.unwrap();
        assert_eq!(outcome.result, expected as i32, "{code}");
        assert_eq!(outcome.error_code, code);
        assert_eq!(outcome.message, "details");
    }
}

#[test]
fn failed_sign_ins() {
    let mut console = create_group();
    console["eventSource"] = json!("signin.amazonaws.com");
    console["eventName"] = json!("ConsoleLogin");
    console["responseElements"] = json!({"ConsoleLogin": "Failure"});
    console["errorMessage"] = json!("Failed authentication");
    let mapped = event(console.clone());
    assert_eq!(mapped.action, "signin.ConsoleLogin");
    assert_eq!(mapped.action_type, ActionType::Login as i32);
    let outcome = mapped.outcome.unwrap();
    assert_eq!(
        (outcome.result, outcome.error_code.as_str()),
        (ResultCode::Failure as i32, "")
    );
    assert_eq!(outcome.message, "Failed authentication");
    console["responseElements"] = json!({"ConsoleLogin": "Success"});
    assert_eq!(
        event(console.clone()).outcome.unwrap().result,
        ResultCode::Success as i32
    );
    console["eventName"] = json!("UserAuthentication");
    console["serviceEventDetails"] = json!({"UserAuthentication": "Failure"});
    assert_eq!(
        event(console).outcome.unwrap().result,
        ResultCode::Failure as i32
    );
}

#[test]
fn source_address_that_is_not_an_ip() {
    for source in ["ec2.amazonaws.com", "81.2.69.142, 192.168.10.10"] {
        let mut value = create_group();
        value["sourceIPAddress"] = json!(source);
        let mapped = event(value);
        let expected_ip = if source.starts_with("81.") {
            "81.2.69.142"
        } else {
            ""
        };
        assert_eq!(mapped.actor.as_ref().unwrap().ip, expected_ip);
        assert_eq!(metadata(&mapped)["sourceIPAddress"], source);
    }
}

#[test]
fn missing_event_id_gets_a_content_hash() {
    let mut value = create_group();
    value.as_object_mut().unwrap().remove("eventID");
    let first = event(value.clone()).event_id;
    assert!(first.starts_with("sha256:"), "{first}");
    assert_eq!(first.len(), "sha256:".len() + 64);
    assert_eq!(event(value.clone()).event_id, first);
    value["eventTime"] = json!("2026-05-06T07:08:10Z");
    assert_ne!(event(value).event_id, first);
}

#[test]
fn invalid_records() {
    let mut spaced = create_group();
    spaced["eventID"] = json!("a b");
    assert!(matches!(
        map(spaced),
        Err(MapError::Value {
            field: "eventID",
            ..
        })
    ));

    let mut no_source = create_group();
    no_source.as_object_mut().unwrap().remove("eventSource");
    assert!(matches!(
        map(no_source),
        Err(MapError::Missing {
            field: "eventSource"
        })
    ));

    let mut no_identity = create_group();
    no_identity.as_object_mut().unwrap().remove("userIdentity");
    assert!(matches!(
        map(no_identity),
        Err(MapError::Missing {
            field: "userIdentity"
        })
    ));

    let mut bad_type = create_group();
    bad_type["eventName"] = json!(42);
    let error = map(bad_type).unwrap_err();
    assert!(
        error.to_string().starts_with("invalid CloudTrail record"),
        "{error}"
    );
}

#[test]
fn huge_response_is_dropped_from_metadata() {
    let mut value = create_group();
    value["responseElements"] = json!({"blob": "x".repeat(70 * 1024)});
    let mapped = event(value);
    assert!(mapped.metadata_json.len() <= Limits::METADATA);
    let metadata = metadata(&mapped);
    assert!(metadata.get("responseElements").is_none());
    assert_eq!(metadata["omittedFields"], json!(["responseElements"]));
    assert_eq!(metadata["requestParameters"]["groupName"], "auditors");
}

#[test]
fn long_error_message_is_cut() {
    let mut value = create_group();
    value["errorCode"] = json!("ValidationError");
    value["errorMessage"] = json!("𝄞".repeat(1500));
    let message = event(value).outcome.unwrap().message;
    assert_eq!(message.len(), 4096);
    assert!(message.chars().all(|c| c == '𝄞'));
}

#[test]
fn tenant_falls_back_to_caller_account() {
    let mut value = create_group();
    value.as_object_mut().unwrap().remove("recipientAccountId");
    assert_eq!(event(value).tenant, "111122223333");
}
