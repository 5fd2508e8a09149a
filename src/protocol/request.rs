//! Requests as they arrive on the wire, parsed into a typed [`Request`].
//!
//! Parse, don't validate: after [`Request::parse`] the router never looks at raw JSON keys
//! for the envelope again. Function arguments stay a JSON object (`kwargs`) because each
//! function reads its own.

use serde_json::{Map, Value};

/// A decoded request envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `{"password", "func", "args", "kwargs"}`.
    Call {
        password: String,
        func: String,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    },
    /// bui-monitor's burp status query `{"password", "query", "timeout", "cache"}`.
    Query {
        password: String,
        query: String,
        timeout: Option<f64>,
        cache: bool,
    },
}

impl Request {
    /// Parses a request frame. The error text is safe to send back (it never echoes the
    /// password).
    pub fn parse(body: &[u8]) -> Result<Request, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("request is not valid JSON: {e}"))?;
        let Value::Object(mut obj) = value else {
            return Err("request must be a JSON object".into());
        };
        let password = match obj.remove("password") {
            Some(Value::String(p)) => p,
            Some(_) => return Err("\"password\" must be a string".into()),
            None => return Err("request has no \"password\"".into()),
        };
        if let Some(func) = obj.remove("func") {
            let Value::String(func) = func else {
                return Err("\"func\" must be a string".into());
            };
            let args = match obj.remove("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a,
                Some(_) => return Err("\"args\" must be an array".into()),
            };
            let kwargs = match obj.remove("kwargs") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(k)) => k,
                Some(_) => return Err("\"kwargs\" must be an object".into()),
            };
            return Ok(Request::Call {
                password,
                func,
                args,
                kwargs,
            });
        }
        if let Some(query) = obj.remove("query") {
            let Value::String(query) = query else {
                return Err("\"query\" must be a string".into());
            };
            let timeout = obj.get("timeout").and_then(Value::as_f64);
            let cache = obj.get("cache").and_then(Value::as_bool).unwrap_or(true);
            return Ok(Request::Query {
                password,
                query,
                timeout,
                cache,
            });
        }
        Err("request has neither \"func\" nor \"query\"".into())
    }

    pub fn password(&self) -> &str {
        match self {
            Request::Call { password, .. } | Request::Query { password, .. } => password,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_with_defaults() {
        let r = Request::parse(br#"{"password":"p","func":"ping"}"#).unwrap();
        assert_eq!(
            r,
            Request::Call {
                password: "p".into(),
                func: "ping".into(),
                args: vec![],
                kwargs: Map::new()
            }
        );
    }

    #[test]
    fn bui_monitor_query() {
        let r = Request::parse(br#"{"password":"p","query":"c:\n","timeout":5,"cache":false}"#)
            .unwrap();
        assert_eq!(
            r,
            Request::Query {
                password: "p".into(),
                query: "c:\n".into(),
                timeout: Some(5.0),
                cache: false
            }
        );
    }

    #[test]
    fn malformed_requests_are_explained() {
        assert!(Request::parse(b"nope")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(Request::parse(b"[1]").unwrap_err().contains("JSON object"));
        assert!(Request::parse(br#"{"func":"x"}"#)
            .unwrap_err()
            .contains("password"));
        assert!(
            Request::parse(br#"{"password":"p","func":"x","kwargs":[]}"#)
                .unwrap_err()
                .contains("kwargs")
        );
        let err = Request::parse(br#"{"password":"secret","x":1}"#).unwrap_err();
        assert!(!err.contains("secret"));
    }
}
