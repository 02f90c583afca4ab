//! The service's HTTP surface: one function from a request to a response,
//! free of sockets so that it can be tested on its own.

use std::io::Read;

use log::error;

use crate::error::{ApiError, chain};
use crate::store::Store;

/// What every request can reach.
pub struct App {
    pub store: Store,
    pub limits: Limits,
}

/// Sizes beyond which input is refused with `413`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of request body.
    pub body: usize,
    /// Bytes of the stored value.
    pub value: usize,
}

/// A request as the handler sees it; the body is read only if the route
/// needs it.
pub struct Request<B> {
    /// As sent, such as `GET`.
    pub method: String,
    /// The path and query, such as `/send?x=1`.
    pub url: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Content-Length` header, if any.
    pub content_length: Option<u64>,
    /// True when the body is sent in chunks of unknown total length.
    pub chunked: bool,
    pub body: B,
}

impl<B: Read> Request<B> {
    /// A request with no content headers, as tests often need.
    pub fn new(method: &str, url: &str, body: B) -> Self {
        Self {
            method: method.to_owned(),
            url: url.to_owned(),
            content_type: None,
            content_length: None,
            chunked: false,
            body,
        }
    }

    /// The path without its query.
    pub fn path(&self) -> &str {
        self.url
            .split_once('?')
            .map_or(&self.url, |(path, _query)| path)
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The `Allow` header of a `405`.
    pub allow: Option<&'static str>,
}

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

impl Response {
    fn ok(content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status: 200,
            content_type,
            body,
            allow: None,
        }
    }

    /// The JSON error answer for `error`: `{"message":"..."}`.
    pub fn from_error(error: &ApiError) -> Self {
        let mut body = String::from("{\"message\":");
        push_json_string(&mut body, &error.client_message());
        body.push_str("}\n");
        let allow = match error {
            ApiError::MethodNotAllowed { allow } => Some(*allow),
            _ => None,
        };
        Self {
            status: error.status(),
            content_type: JSON,
            body: body.into_bytes(),
            allow,
        }
    }
}

/// Answers one request. Errors become their JSON answer here, and each
/// `5xx` is logged with its full cause.
pub fn handle<B: Read>(app: &App, mut request: Request<B>) -> Response {
    route(app, &mut request).unwrap_or_else(|error| {
        if error.status() >= 500 {
            error!(
                "{} {} failed: {}",
                request.method,
                request.path(),
                chain(&error)
            );
        }
        Response::from_error(&error)
    })
}

fn route<B: Read>(app: &App, request: &mut Request<B>) -> Result<Response, ApiError> {
    match (request.method.as_str(), request.path()) {
        ("GET" | "HEAD", "/") => count(app),
        ("GET" | "HEAD", "/ping") => Ok(Response::ok(JSON, b"{\"Status\":\"OK\"}\n".to_vec())),
        ("POST", "/send") => send(app, request),
        (_, "/" | "/ping") => Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" }),
        (_, "/send") => Err(ApiError::MethodNotAllowed { allow: "POST" }),
        _ => Err(ApiError::NotFound),
    }
}

fn count(app: &App) -> Result<Response, ApiError> {
    let count = app.store.count_messages()?;

    Ok(Response::ok(
        HTML,
        format!("Hello, Docker! ({count})\n").into_bytes(),
    ))
}

fn send<B: Read>(app: &App, request: &mut Request<B>) -> Result<Response, ApiError> {
    if !is_json(request.content_type.as_deref()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = read_body(request, app.limits.body)?;
    let value = parse_value(&body, app.limits.value)?;

    app.store.save_message(&value)?;

    let mut body = String::with_capacity(value.len() + 13);
    body.push_str("{\"value\":");
    push_json_string(&mut body, &value);
    body.push_str("}\n");
    Ok(Response::ok(JSON, body.into_bytes()))
}

/// True for `application/json`, with or without parameters such as
/// `charset`.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(JSON))
}

/// Reads the whole body, refusing it as soon as it is known to be too
/// large: from its declared length before reading a byte, otherwise after
/// one byte past the limit.
fn read_body<B: Read>(request: &mut Request<B>, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::TooLarge(format!("the body is larger than {limit} bytes"));
    let declared = request.content_length.unwrap_or(0);
    if declared > limit as u64 {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared as usize);
    (&mut request.body)
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|error| ApiError::BadRequest(format!("the body could not be read: {error}")))?;
    if body.len() > limit {
        return Err(too_large());
    }
    Ok(body)
}

/// The `value` of a body such as `{"value": "hello"}`, checked against
/// everything the store cannot or will not keep.
fn parse_value(body: &[u8], limit: usize) -> Result<String, ApiError> {
    let bad = |reason: &str| ApiError::BadRequest(reason.to_owned());
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not valid UTF-8"))?;
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| ApiError::BadRequest(format!("the body is not valid JSON: {error}")))?;
    let serde_json::Value::Object(mut fields) = json else {
        return Err(bad(
            "the body must be a JSON object such as {\"value\": \"hello\"}",
        ));
    };
    let value = match fields.remove("value") {
        Some(serde_json::Value::String(value)) => value,
        Some(_) => return Err(bad("\"value\" must be a string")),
        None => return Err(bad("the body has no \"value\" field")),
    };
    if value.contains('\0') {
        return Err(bad("\"value\" must not contain NUL characters"));
    }
    if value.len() > limit {
        return Err(ApiError::TooLarge(format!(
            "\"value\" is {} bytes long; at most {limit} are stored",
            value.len()
        )));
    }
    Ok(value)
}

/// Appends `text` as a JSON string escaped exactly as the Go original's
/// encoder does (HTML-safe `<`, `>` and `&`), so that its users' scripts
/// see the same bytes.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
