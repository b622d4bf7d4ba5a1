//! A tool call's arguments, checked against the catalogued input schema before any tool runs.
//!
//! FastMCP validates arguments with a pydantic model named `<tool>Arguments` and, on failure,
//! returns the validation error as an `isError` result (not a JSON-RPC error); the text here
//! follows pydantic's layout so clients see what they would see from the real server.

use serde_json::{Map, Value};

use super::catalogue::{CatalogueTool, Parameter, ParameterType};

/// Arguments that satisfy the tool's schema: required ones are present and every given one has
/// its declared type. Absent optional ones read as the schema's default.
#[derive(Debug)]
pub struct Arguments<'a> {
    tool: &'static CatalogueTool,
    given: Option<&'a Map<String, Value>>,
}

impl<'a> Arguments<'a> {
    /// Checks `given` (the call's `arguments` object, if any); the error is the text of the
    /// `isError` result.
    pub fn parse(
        tool: &'static CatalogueTool,
        given: Option<&'a Map<String, Value>>,
    ) -> Result<Self, String> {
        let problems: Vec<String> = tool
            .parameters
            .iter()
            .filter_map(|parameter| {
                problem(parameter, given.and_then(|g| g.get(&parameter.name)), given)
            })
            .collect();
        if problems.is_empty() {
            return Ok(Self { tool, given });
        }
        let plural = if problems.len() == 1 { "" } else { "s" };
        Err(format!(
            "{} validation error{plural} for {}Arguments\n{}",
            problems.len(),
            tool.name,
            problems.join("\n")
        ))
    }

    fn value(&self, name: &str) -> Option<&Value> {
        self.given.and_then(|g| g.get(name)).or_else(|| {
            self.tool
                .parameters
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.default.as_ref())
        })
    }

    /// A string argument (validated, so only a tool asking for an undeclared name gets "").
    pub fn string(&self, name: &str) -> &str {
        self.value(name).and_then(Value::as_str).unwrap_or_default()
    }

    /// An integer argument, or `None` when it is absent with a `null` default.
    pub fn integer(&self, name: &str) -> Option<i64> {
        self.value(name).and_then(as_integer)
    }
}

/// JSON integers, and floats without a fractional part (pydantic and JSON Schema both accept 10.0).
fn as_integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let float = value.as_f64()?;
        (float.fract() == 0.0 && float.abs() < 9.2e18).then_some(float as i64)
    })
}

/// Pydantic's two lines for one bad field, or `None` when it is fine.
fn problem(
    parameter: &Parameter,
    value: Option<&Value>,
    given: Option<&Map<String, Value>>,
) -> Option<String> {
    let (message, kind, input) = match value {
        None if parameter.required => {
            let input = given.map_or_else(
                || "{}".to_owned(),
                |g| python_repr(&Value::Object(g.clone())),
            );
            ("Field required", "missing", input)
        }
        None => return None,
        Some(value) => match parameter.kind {
            ParameterType::String if value.is_string() => return None,
            ParameterType::String => (
                "Input should be a valid string",
                "string_type",
                python_repr(value),
            ),
            ParameterType::Integer if as_integer(value).is_some() => return None,
            ParameterType::Integer if value.is_f64() => (
                "Input should be a valid integer, got a number with a fractional part",
                "int_from_float",
                python_repr(value),
            ),
            ParameterType::Integer => (
                "Input should be a valid integer",
                "int_type",
                python_repr(value),
            ),
        },
    };
    let input_type = match value {
        None => "dict",
        Some(value) => python_type(value),
    };
    Some(format!(
        "{}\n  {message} [type={kind}, input_value={input}, input_type={input_type}]",
        parameter.name
    ))
}

fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Roughly Python's `repr`, which is what pydantic prints as `input_value`.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("'{k}': {}", python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Number(n) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::catalogue::{catalogue, index_of};
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> &'static CatalogueTool {
        &catalogue()[index_of(name).unwrap()]
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_fill_absent_optional_arguments() {
        let given = object(json!({"symbol": "BTCUSDT"}));
        let args = Arguments::parse(tool("get_order_book"), Some(&given)).unwrap();
        assert_eq!(args.string("symbol"), "BTCUSDT");
        assert_eq!(args.integer("depth"), Some(10));

        let given = object(json!({"symbol": "BTCUSDT", "limit": 5.0}));
        let args = Arguments::parse(tool("get_historical_trades"), Some(&given)).unwrap();
        assert_eq!(args.integer("limit"), Some(5));
        assert_eq!(args.integer("from_id"), None, "from_id defaults to null");
    }

    #[test]
    fn missing_required_argument_reads_like_pydantic() {
        let error = Arguments::parse(tool("get_price"), None).unwrap_err();
        assert_eq!(
            error,
            "1 validation error for get_priceArguments\nsymbol\n  Field required [type=missing, input_value={}, input_type=dict]"
        );
    }

    #[test]
    fn wrong_types_are_refused() {
        let given = object(json!({"symbol": 42, "depth": "ten"}));
        let error = Arguments::parse(tool("get_order_book"), Some(&given)).unwrap_err();
        assert!(
            error.starts_with("2 validation errors for get_order_bookArguments"),
            "{error}"
        );
        assert!(error.contains("symbol\n  Input should be a valid string"));
        assert!(error.contains("depth\n  Input should be a valid integer [type=int_type, input_value='ten', input_type=str]"));

        let given = object(json!({"symbol": "BTCUSDT", "depth": 2.5}));
        let error = Arguments::parse(tool("get_order_book"), Some(&given)).unwrap_err();
        assert!(error.contains("fractional part"));

        let given = object(json!({"symbol": "BTCUSDT", "from_id": null}));
        assert!(
            Arguments::parse(tool("get_historical_trades"), Some(&given)).is_err(),
            "null is not an integer"
        );
    }

    #[test]
    fn extra_arguments_are_ignored_as_pydantic_does() {
        let given = object(json!({"symbol": "BTCUSDT", "unexpected": true}));
        assert!(Arguments::parse(tool("get_price"), Some(&given)).is_ok());
    }
}
