//! `/containerLogs/<namespace>/<pod>/<container>`: a container's log, streamed as the engine
//! gives it (upstream kubelet `getContainerLogs`), with `follow`, `previous`, `tailLines`,
//! `sinceSeconds`/`sinceTime`, `timestamps` and `limitBytes`. Nothing holds a whole log: a
//! follower costs a bounded buffer however much the container writes.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use http::{Response, StatusCode};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;

use super::labels;
use super::runtime::{LogOptions, Runtime};
use super::server::{reply, Body};

/// The request's options, parsed; a value that does not parse is the request's 400.
#[derive(Debug, Default, PartialEq)]
pub struct Request {
    pub options: LogOptions,
    pub previous: bool,
    pub limit_bytes: Option<u64>,
}

fn flag(value: Option<&str>, key: &str) -> Result<bool, String> {
    match value {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(format!("invalid value {other:?} for {key}")),
    }
}

fn number(value: Option<&str>, key: &str) -> Result<Option<i64>, String> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| format!("invalid value {v:?} for {key}"))
        })
        .transpose()
}

/// Reads the query as upstream's kubelet decodes `PodLogOptions`.
pub fn parse(query: &[(String, String)], now: jiff::Timestamp) -> Result<Request, String> {
    let param = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let since_seconds = number(param("sinceSeconds"), "sinceSeconds")?;
    let since_time = param("sinceTime")
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<jiff::Timestamp>()
                .map_err(|_| format!("invalid value {t:?} for sinceTime"))
        })
        .transpose()?;
    let since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => {
            return Err("at most one of sinceTime or sinceSeconds may be specified".into())
        }
        (Some(s), None) => now.checked_sub(jiff::SignedDuration::from_secs(s)).ok(),
        (None, t) => t,
    };
    let tail = number(param("tailLines"), "tailLines")?
        .map(|n| u64::try_from(n).map_err(|_| "tailLines must be non-negative".to_string()))
        .transpose()?;
    let limit_bytes = number(param("limitBytes"), "limitBytes")?
        .map(|n| u64::try_from(n).map_err(|_| "limitBytes must be non-negative".to_string()))
        .transpose()?;
    Ok(Request {
        options: LogOptions {
            tail,
            since,
            timestamps: flag(param("timestamps"), "timestamps")?,
            follow: flag(param("follow"), "follow")?,
        },
        previous: flag(param("previous"), "previous")?,
        limit_bytes,
    })
}

/// At most `limit` bytes of `stream`, then its end (which drops the engine's stream, so a
/// follower stops following).
fn limited(
    stream: futures::stream::BoxStream<'static, Result<Bytes, super::runtime::RuntimeError>>,
    limit: Option<u64>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    stream
        .map(|chunk| chunk.map_err(std::io::Error::other))
        .scan(limit.unwrap_or(u64::MAX), |room, chunk| {
            if *room == 0 {
                return futures::future::ready(None);
            }
            let chunk = chunk.map(|mut bytes| {
                let keep = usize::try_from(*room)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes.truncate(keep);
                *room -= keep as u64;
                bytes
            });
            futures::future::ready(Some(chunk))
        })
}

/// Serves the log of `container` of the Pod `namespace/pod` on `node`.
pub async fn serve(
    runtime: &Arc<dyn Runtime>,
    node: &str,
    (namespace, pod, container): (&str, &str, &str),
    query: &[(String, String)],
) -> Response<Body> {
    let request = match parse(query, jiff::Timestamp::now()) {
        Ok(request) => request,
        Err(message) => return reply(StatusCode::BAD_REQUEST, message),
    };
    let filter = [
        (labels::NODE.to_string(), node.to_string()),
        (labels::POD_NAMESPACE.to_string(), namespace.to_string()),
        (labels::POD_NAME.to_string(), pod.to_string()),
        (labels::CONTAINER_NAME.to_string(), container.to_string()),
    ];
    let mut found = match runtime.list(&filter).await {
        Ok(found) => found,
        Err(e) => return reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    found.retain(|c| c.labels.get(labels::KIND).map(String::as_str) != Some("sandbox"));
    found.sort_by_key(|c| std::cmp::Reverse(labels::attempt(&c.labels)));
    let wanted = if request.previous {
        found.get(1)
    } else {
        found.first()
    };
    let Some(wanted) = wanted else {
        let message = if request.previous {
            format!("previous terminated container {container:?} in pod {pod:?} not found")
        } else {
            format!("container {container:?} in pod {pod:?} is not available")
        };
        return reply(StatusCode::BAD_REQUEST, message);
    };
    let mut options = request.options.clone();
    // A previous attempt has ended: there is nothing to follow.
    options.follow &= !request.previous;
    let stream = match runtime.log_stream(&wanted.id, &options).await {
        Ok(stream) => stream,
        Err(e) => return reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let frames = limited(stream, request.limit_bytes).map(|chunk| chunk.map(Frame::data));
    let mut resp = Response::new(StreamBody::new(frames).boxed_unsync());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_parse_as_upstream_and_bad_ones_fail() {
        let now: jiff::Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let got = parse(
            &query(&[
                ("follow", "true"),
                ("tailLines", "5"),
                ("sinceSeconds", "10"),
                ("timestamps", "1"),
                ("limitBytes", "100"),
                ("previous", "false"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(
            got,
            Request {
                options: LogOptions {
                    tail: Some(5),
                    since: Some("2026-01-01T00:00:50Z".parse().unwrap()),
                    timestamps: true,
                    follow: true,
                },
                previous: false,
                limit_bytes: Some(100),
            }
        );
        let since_time = parse(&query(&[("sinceTime", "2025-12-31T23:00:00Z")]), now).unwrap();
        assert_eq!(
            since_time.options.since,
            Some("2025-12-31T23:00:00Z".parse().unwrap())
        );
        for bad in [
            &[("follow", "yes")][..],
            &[("tailLines", "x")],
            &[("tailLines", "-1")],
            &[("limitBytes", "1e3")],
            &[("sinceTime", "yesterday")],
            &[("sinceSeconds", "5"), ("sinceTime", "2025-12-31T23:00:00Z")],
        ] {
            assert!(parse(&query(bad), now).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn limit_bytes_cuts_the_stream_where_it_says() {
        let chunks: Vec<Result<Bytes, super::super::runtime::RuntimeError>> = vec![
            Ok(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world\n")),
            Ok(Bytes::from_static(b"more\n")),
        ];
        let collect = |limit| {
            let stream = futures::stream::iter(chunks.clone()).boxed();
            async move {
                limited(stream, limit)
                    .map(|c| c.unwrap())
                    .collect::<Vec<_>>()
                    .await
                    .concat()
            }
        };
        assert_eq!(collect(Some(8)).await, b"hello wo");
        assert_eq!(collect(Some(6)).await, b"hello ");
        assert_eq!(collect(Some(0)).await, b"");
        assert_eq!(collect(None).await, b"hello world\nmore\n");
    }
}
