//! The answer each event source expects for an invocation, made from what became of its events.

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use aws_lambda_events::event::sqs::SqsBatchResponse;
use hyper::header::{self, HeaderMap, HeaderValue};
use serde::Serialize;

use super::error::InvocationError;
use super::shapes::{ReadError, Shape};
use crate::delivery::Outcome;
use crate::source::submit::{Outcomes, Refused};

/// What became of an invocation's items.
#[derive(Debug)]
pub enum Verdict {
    /// What happened to each item (`None`: unfinished at the deadline).
    Finished(Outcomes),
    /// The pipeline took none of them, or not all.
    Refused(Refused),
    /// The payload is not a well-formed event of its shape.
    Malformed(ReadError),
}

/// The answer to an invocation; serialized as the event source expects it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// SQS: the messages to retry (`batchItemFailures`).
    Sqs(SqsBatchResponse),
    /// API Gateway REST API: status, headers and body.
    ApiGatewayV1(ApiGatewayProxyResponse),
    /// API Gateway HTTP API or function URL: status, headers and body.
    ApiGatewayV2(ApiGatewayV2httpResponse),
    /// Kafka and direct invocations: how many items were delivered and dead-lettered.
    Counts {
        /// Items delivered (or filtered out).
        accepted: usize,
        /// Items dead-lettered or dropped by the error policy.
        dead_lettered: usize,
    },
}

/// The answer for an invocation of `shape` (SQS message ids `ids`) given what became of it: an
/// error where the event source is to retry the whole invocation.
pub fn answer(shape: Shape, ids: &[String], verdict: Verdict) -> Result<Answer, InvocationError> {
    match shape {
        Shape::Sqs => sqs_answer(ids, verdict),
        Shape::ApiGatewayV1 | Shape::ApiGatewayV2 => {
            let (status, body) = http_answer(verdict);
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let body = Some(Body::Text(body.to_string()));
            Ok(if shape == Shape::ApiGatewayV1 {
                let mut response = ApiGatewayProxyResponse::default();
                (response.status_code, response.headers, response.body) = (status, headers, body);
                Answer::ApiGatewayV1(response)
            } else {
                let mut response = ApiGatewayV2httpResponse::default();
                (response.status_code, response.headers, response.body) = (status, headers, body);
                Answer::ApiGatewayV2(response)
            })
        }
        Shape::Kafka | Shape::Json => match verdict {
            Verdict::Finished(outcomes) if outcomes.all_done() => Ok(counts(&outcomes)),
            Verdict::Finished(outcomes) => Err(not_delivered(&outcomes)),
            Verdict::Refused(refused) => Err(refused.into()),
            Verdict::Malformed(error) => Err(InvocationError::Malformed {
                shape: shape.name(),
                error,
            }),
        },
    }
}

fn sqs_answer(ids: &[String], verdict: Verdict) -> Result<Answer, InvocationError> {
    let mut response = SqsBatchResponse::default();
    match verdict {
        Verdict::Finished(outcomes) => response.set_failures(
            ids.iter()
                .enumerate()
                .filter(|(i, _)| !outcomes.is_done(*i))
                .map(|(_, id)| id.clone()),
        ),
        // Nothing is known to be delivered: every message is retried.
        Verdict::Refused(_) => response.set_failures(ids.iter().cloned()),
        Verdict::Malformed(error) => {
            return Err(InvocationError::Malformed {
                shape: Shape::Sqs.name(),
                error,
            });
        }
    }
    Ok(Answer::Sqs(response))
}

/// Status and body, as the `http_server` input answers.
fn http_answer(verdict: Verdict) -> (i64, serde_json::Value) {
    use serde_json::json;
    match verdict {
        Verdict::Finished(outcomes) if outcomes.all_done() => (
            200,
            json!({
                "accepted": outcomes.count(Outcome::Delivered),
                "dead_lettered": outcomes.count(Outcome::Rejected),
            }),
        ),
        Verdict::Finished(outcomes) => (
            503,
            json!({
                "error": "not every event was delivered in time; send the request again",
                "delivered": outcomes.count(Outcome::Delivered),
                "dead_lettered": outcomes.count(Outcome::Rejected),
                "failed": outcomes.count(Outcome::Failed),
                "unfinished": outcomes.unfinished(),
            }),
        ),
        Verdict::Refused(Refused::Busy) => {
            (429, json!({ "error": "the pipeline is full; retry later" }))
        }
        Verdict::Refused(Refused::Closed) => (503, json!({ "error": "the pipeline is stopping" })),
        Verdict::Malformed(error) => (400, json!({ "error": error.to_string() })),
    }
}

fn counts(outcomes: &Outcomes) -> Answer {
    Answer::Counts {
        accepted: outcomes.count(Outcome::Delivered),
        dead_lettered: outcomes.count(Outcome::Rejected),
    }
}

fn not_delivered(outcomes: &Outcomes) -> InvocationError {
    InvocationError::NotDelivered {
        total: outcomes.0.len(),
        failed: outcomes.count(Outcome::Failed),
        unfinished: outcomes.unfinished(),
    }
}
