//! Label and field selectors: parsing the `labelSelector` and `fieldSelector` list/watch query parameters and matching objects against them.
//!
//! Behaviour and error texts follow kube-apiserver v1.32 (apimachinery v0.32 `pkg/labels/selector.go`,
//! `pkg/fields/selector.go` and the label-key/value checks of `pkg/util/validation`), because clients
//! (kubectl, client-go, conformance tests) compare these messages and rely on the exact grammar,
//! including its quirks (`x in ()` means "x is the empty string", terms are sorted by key).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use crate::meta::validation;

/// A selector that failed to parse. `Display` is the message upstream's parser returns, which
/// kube-apiserver puts into the `BadRequest` status it answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector whose requirements are not separated or terminated properly
    /// (upstream reports these without the "unable to parse requirement" prefix).
    #[error("{0}")]
    LabelSyntax(String),
    /// A label requirement that is malformed or carries an invalid key or value.
    #[error("unable to parse requirement: {0}")]
    LabelRequirement(String),
    /// A field selector term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm {
        /// The whole selector as received.
        selector: String,
        /// The offending comma-separated term.
        term: String,
    },
    /// A field selector value with a backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    FieldEscape(String),
    /// A field selector value containing a bare `,` or `=`; upstream prints the code point as a number.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    FieldUnescaped(char),
}

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------

/// The relation a label requirement states between a key and its values
/// (upstream `selection.Operator`, restricted to what label selectors accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelOperator {
    /// `key in (a,b)`: the key exists and its value is one of the set.
    In,
    /// `key notin (a,b)`: the key is absent or its value is none of the set.
    NotIn,
    /// `key=value`.
    Equals,
    /// `key==value` (same meaning as `=`, kept apart so `Display` reproduces the input).
    DoubleEquals,
    /// `key!=value`: the key is absent or has another value.
    NotEquals,
    /// `key`: the key exists.
    Exists,
    /// `!key`: the key does not exist.
    DoesNotExist,
    /// `key>n`: the value parses as an integer greater than n.
    GreaterThan,
    /// `key<n`: the value parses as an integer less than n.
    LessThan,
}

/// One comma-separated term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequirement {
    key: String,
    operator: LabelOperator,
    /// Sorted and deduplicated, as upstream builds them from a string set.
    values: Vec<String>,
}

impl LabelRequirement {
    /// The label key this requirement tests.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator relating key and values.
    pub fn operator(&self) -> LabelOperator {
        self.operator
    }

    /// The values, sorted and without duplicates; empty for `Exists`/`DoesNotExist`.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Upstream `labels.NewRequirement` for callers that hold a key, operator and values rather
    /// than selector text (node affinity's `matchExpressions`): the key must be a qualified name,
    /// the number of values must suit the operator, `Gt`/`Lt` values must be integers and every
    /// value must be a label value. Only the first problem found is reported.
    pub fn new(
        key: &str,
        operator: LabelOperator,
        values: &[String],
    ) -> Result<LabelRequirement, SelectorError> {
        let invalid = |message: String| Err(SelectorError::LabelRequirement(message));
        let problems = validation::is_qualified_name(key);
        if !problems.is_empty() {
            return invalid(invalid_value("key", key, &problems.join("; ")));
        }
        let count_problem = match operator {
            LabelOperator::In | LabelOperator::NotIn if values.is_empty() => {
                Some("for 'in', 'notin' operators, values set can't be empty")
            }
            LabelOperator::Equals | LabelOperator::DoubleEquals | LabelOperator::NotEquals
                if values.len() != 1 =>
            {
                Some("exact-match compatibility requires one single value")
            }
            LabelOperator::Exists | LabelOperator::DoesNotExist if !values.is_empty() => {
                Some("values set must be empty for exists and does not exist")
            }
            LabelOperator::GreaterThan | LabelOperator::LessThan if values.len() != 1 => {
                Some("for 'Gt', 'Lt' operators, exactly one value is required")
            }
            _ => None,
        };
        if let Some(detail) = count_problem {
            // Upstream prints the offending slice with Go's `%#v`.
            let quoted: Vec<String> = values.iter().map(|v| validation::go_quote(v)).collect();
            return invalid(format!(
                "values: Invalid value: []string{{{}}}: {detail}",
                quoted.join(", ")
            ));
        }
        new_requirement(key, operator, values.iter().map(String::as_str).collect())
            .map_err(SelectorError::LabelRequirement)
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    /// Upstream `Requirement.Matches`: `!=` and `notin` also match objects lacking the key;
    /// `>`/`<` never match a value that is not a 64-bit integer.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|key| labels.get(key).map(String::as_str))
    }

    /// [`LabelRequirement::matches`] against labels read by `label` (a key's value, None when
    /// absent), e.g. straight from an object without copying its labels.
    pub fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        let actual = label(&self.key);
        match self.operator {
            LabelOperator::In | LabelOperator::Equals | LabelOperator::DoubleEquals => {
                actual.is_some_and(|v| self.has_value(v))
            }
            LabelOperator::NotIn | LabelOperator::NotEquals => {
                actual.is_none_or(|v| !self.has_value(v))
            }
            LabelOperator::Exists => actual.is_some(),
            LabelOperator::DoesNotExist => actual.is_none(),
            LabelOperator::GreaterThan | LabelOperator::LessThan => {
                let Some(actual) = actual.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == LabelOperator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for LabelRequirement {
    /// Upstream `Requirement.String`, e.g. `x in (a,b)`, `!y`, `z!=c`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == LabelOperator::DoesNotExist {
            f.write_char('!')?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            LabelOperator::Exists | LabelOperator::DoesNotExist => return Ok(()),
            LabelOperator::Equals => "=",
            LabelOperator::DoubleEquals => "==",
            LabelOperator::NotEquals => "!=",
            LabelOperator::In => " in (",
            LabelOperator::NotIn => " notin (",
            LabelOperator::GreaterThan => ">",
            LabelOperator::LessThan => "<",
        };
        f.write_str(op)?;
        f.write_str(&self.values.join(","))?;
        if matches!(self.operator, LabelOperator::In | LabelOperator::NotIn) {
            f.write_char(')')?;
        }
        Ok(())
    }
}

/// A parsed label selector: the AND of its requirements, kept sorted by key as upstream does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query string with upstream's grammar
    /// (`labels.Parse`): `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>n`, `k<n`.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut parser = Parser::new(s);
        let mut requirements = parser.parse()?;
        // Stable sort by key, as upstream sorts requirements for a deterministic result.
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// The selector that matches every object (an empty query string).
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// A selector requiring each label of `set` to have exactly that value, without validating
    /// keys or values (upstream `SelectorFromValidatedSet`, used for e.g. a Service's `spec.selector`).
    pub fn from_set(set: &BTreeMap<String, String>) -> LabelSelector {
        let requirements = set
            .iter()
            .map(|(k, v)| LabelRequirement {
                key: k.clone(),
                operator: LabelOperator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        LabelSelector { requirements }
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[LabelRequirement] {
        &self.requirements
    }

    /// True when every requirement holds for `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when every requirement holds for the labels `label` reads (see
    /// [`LabelRequirement::matches_with`]).
    pub fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str> + Copy) -> bool {
        self.requirements.iter().all(|r| r.matches_with(label))
    }

    /// The single value the selector pins `label` to (`label=v`, `label==v` or `label in (v)`),
    /// following upstream `RequiresExactMatch`: only the first requirement on that key counts.
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (LabelOperator::Equals | LabelOperator::DoubleEquals | LabelOperator::In, [value]) => {
                Some(value)
            }
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    /// Upstream `Selector.String`: the requirements, sorted by key, joined with commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

/// Lexical tokens of the label selector language (upstream `Token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the selector into tokens the way upstream's lexer does. A NUL byte acts as the end of
/// input where a token would start (upstream reads 0 as "end"); every cut falls next to an ASCII
/// byte, so the literals are always valid `&str` slices.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn slice(&self, start: usize, end: usize) -> &'a str {
        // Both ends sit next to ASCII bytes (or at the ends of the string), hence on char boundaries.
        self.s.get(start..end).unwrap_or_default()
    }

    fn lex(&mut self) -> (Token, &'a str) {
        while self.peek().is_some_and(is_whitespace) {
            self.pos += 1;
        }
        match self.peek() {
            None => (Token::EndOfString, ""),
            Some(0) => {
                self.pos += 1;
                (Token::EndOfString, "")
            }
            Some(b) if is_special_symbol(b) => self.scan_special_symbol(),
            Some(_) => self.scan_identifier_or_keyword(),
        }
    }

    /// The longest operator starting here: `!=` and `==` win over `!` and `=`. Upstream's
    /// scanner swallows a NUL byte directly following an operator; so do we.
    fn scan_special_symbol(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let bytes = self.s.as_bytes();
        let two = bytes.get(start..start + 2);
        let (token, len) = match (bytes.get(start), two) {
            (_, Some(b"!=")) => (Token::NotEquals, 2),
            (_, Some(b"==")) => (Token::DoubleEquals, 2),
            (Some(b'!'), _) => (Token::DoesNotExist, 1),
            (Some(b'='), _) => (Token::Equals, 1),
            (Some(b'('), _) => (Token::OpenPar, 1),
            (Some(b')'), _) => (Token::ClosedPar, 1),
            (Some(b','), _) => (Token::Comma, 1),
            (Some(b'>'), _) => (Token::GreaterThan, 1),
            (Some(b'<'), _) => (Token::LessThan, 1),
            // Only called on a special symbol; treat anything else as the end defensively.
            _ => return (Token::EndOfString, ""),
        };
        self.pos = start + len;
        let literal = self.slice(start, self.pos);
        if self.peek() == Some(0) {
            self.pos += 1;
        }
        (token, literal)
    }

    /// Everything up to whitespace, an operator character, NUL or the end; `in` and `notin`
    /// are keywords, anything else an identifier (a key or a value).
    fn scan_identifier_or_keyword(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let end;
        loop {
            match self.peek() {
                None => {
                    end = self.pos;
                    break;
                }
                Some(0) => {
                    end = self.pos;
                    self.pos += 1;
                    break;
                }
                Some(b) if is_special_symbol(b) || is_whitespace(b) => {
                    end = self.pos;
                    break;
                }
                Some(_) => self.pos += 1,
            }
        }
        let literal = self.slice(start, end);
        let token = match literal {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Identifier,
        };
        (token, literal)
    }
}

/// Whether `in`/`notin` are read as operators or, where a key or value is expected, as identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// Upstream's comma list of binary operators, quoted verbatim in "expected:" messages.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// Recursive-descent parser over the pre-scanned tokens, mirroring upstream's `Parser`.
/// Errors inside a requirement are plain strings; `parse` wraps them.
struct Parser<'a> {
    items: Vec<(Token, &'a str)>,
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Parser<'a> {
        let mut lexer = Lexer { s, pos: 0 };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            items.push(item);
            if item.0 == Token::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn item(&self, index: usize, context: Context) -> (Token, &'a str) {
        let (token, literal) = self
            .items
            .get(index)
            .copied()
            .unwrap_or((Token::EndOfString, ""));
        match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn lookahead(&self, context: Context) -> (Token, &'a str) {
        self.item(self.position, context)
    }

    fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let item = self.item(self.position, context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<LabelRequirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(SelectorError::LabelRequirement)?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, next_literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(SelectorError::LabelSyntax(format!(
                                    "found '{next_literal}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError::LabelSyntax(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            )))
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(SelectorError::LabelSyntax(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<LabelRequirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (LabelOperator::Exists | LabelOperator::DoesNotExist)) = inferred {
            return new_requirement(key, op, BTreeSet::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            LabelOperator::In | LabelOperator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(key, operator, values)
    }

    /// Reads `[!]key`; with nothing but `,` or the end after the key, the operator is
    /// inferred (`Exists`, or `DoesNotExist` after `!`).
    fn parse_key_and_infer_operator(&mut self) -> Result<(&'a str, Option<LabelOperator>), String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(LabelOperator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        let problems = validation::is_qualified_name(literal);
        if !problems.is_empty() {
            // Upstream validates the key against a nil field path, hence the "<nil>".
            return Err(invalid_value("<nil>", literal, &problems.join("; ")));
        }
        let (next, _) = self.lookahead(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) && operator.is_none() {
            operator = Some(LabelOperator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<LabelOperator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => LabelOperator::In,
            Token::Equals => LabelOperator::Equals,
            Token::DoubleEquals => LabelOperator::DoubleEquals,
            Token::GreaterThan => LabelOperator::GreaterThan,
            Token::LessThan => LabelOperator::LessThan,
            Token::NotIn => LabelOperator::NotIn,
            Token::NotEquals => LabelOperator::NotEquals,
            _ => return Err(format!("found '{literal}', expected: {BINARY_OPERATORS}")),
        })
    }

    /// `( values )`; an empty pair of parentheses is upstream's set holding the empty string.
    fn parse_values(&mut self) -> Result<BTreeSet<&'a str>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (closing, _) = self.consume(Context::Values);
                if closing != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([""]))
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    /// A comma-separated list of possibly empty values, stopping before `)`. This keeps v1.32's
    /// handling of two adjacent commas (the second one is consumed as an empty value, so
    /// `(a,,)` is rejected there; later releases accept it).
    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<&'a str>, String> {
        let mut set = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    set.insert(literal);
                    let (next, next_literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{next_literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert("");
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        set.insert("");
                        return Ok(set);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        set.insert("");
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>` or `<`; nothing before `,` or the end is "".
    fn parse_exact_value(&mut self) -> Result<BTreeSet<&'a str>, String> {
        let (next, _) = self.lookahead(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) {
            return Ok(BTreeSet::from([""]));
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(BTreeSet::from([literal]))
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

/// Upstream `NewRequirement` as reached from the parser (the key is already valid and the value
/// count always fits the operator): checks `>`/`<` values are integers and every value is a valid
/// label value, aggregating the problems the way `field.ErrorList.ToAggregate` prints them.
fn new_requirement(
    key: &str,
    operator: LabelOperator,
    values: BTreeSet<&str>,
) -> Result<LabelRequirement, String> {
    let values: Vec<String> = values.into_iter().map(str::to_owned).collect();
    let mut errors: Vec<String> = Vec::new();
    if matches!(
        operator,
        LabelOperator::GreaterThan | LabelOperator::LessThan
    ) {
        for (i, v) in values.iter().enumerate() {
            if v.parse::<i64>().is_err() {
                errors.push(invalid_value(
                    &format!("values[{i}]"),
                    v,
                    "for 'Gt', 'Lt' operators, the value must be an integer",
                ));
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let problems = validation::is_valid_label_value(v);
        if !problems.is_empty() {
            errors.push(invalid_value(
                &format!("values[{i}][{key}]"),
                v,
                &problems.join("; "),
            ));
        }
    }
    let mut seen = BTreeSet::new();
    let mut unique: Vec<String> = errors
        .into_iter()
        .filter(|e| seen.insert(e.clone()))
        .collect();
    match unique.len() {
        0 => Ok(LabelRequirement {
            key: key.to_owned(),
            operator,
            values,
        }),
        1 => Err(unique.swap_remove(0)),
        _ => Err(format!("[{}]", unique.join(", "))),
    }
}

/// Upstream `field.Invalid(path, value, detail).Error()`.
fn invalid_value(path: &str, value: &str, detail: &str) -> String {
    format!(
        "{path}: Invalid value: {}: {detail}",
        validation::go_quote(value)
    )
}

// ---------------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------------

/// The two relations a field selector term can state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector, with its value unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    /// The field path as written, e.g. `metadata.name` (not checked here: the caller knows
    /// which fields the kind supports).
    pub field: String,
    /// Equality or inequality.
    pub operator: FieldOperator,
    /// The value after unescaping `\,`, `\=` and `\\`.
    pub value: String,
}

/// A parsed field selector: the AND of its terms, in upstream's order (terms sorted as text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query string like upstream `fields.ParseSelector`:
    /// comma-separated `field=value`, `field==value` or `field!=value` terms; empty terms are
    /// skipped, and a term with both field and value empty (`=`) selects everything.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut terms = split_terms(s);
        terms.sort_unstable();
        let mut requirements = Vec::with_capacity(terms.len());
        for term in terms {
            if term.is_empty() {
                continue;
            }
            let Some((field, operator, raw_value)) = split_term(term) else {
                return Err(SelectorError::FieldTerm {
                    selector: s.to_owned(),
                    term: term.to_owned(),
                });
            };
            let value = unescape_value(raw_value)?;
            if field.is_empty() && value.is_empty() {
                // Upstream's identity transform turns such a term into "everything".
                continue;
            }
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// The selector that matches every object.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The terms, in upstream's (sorted) order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True when every term holds. `lookup` returns the value of a selectable field, or None if
    /// the field is not selectable for the kind; like upstream's `fields.Set.Get`, a missing field
    /// reads as the empty string (callers reject unknown fields before matching).
    pub fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = lookup(&r.field).unwrap_or_default();
            match r.operator {
                FieldOperator::Equals => actual == r.value,
                FieldOperator::NotEquals => actual != r.value,
            }
        })
    }

    /// The value the selector pins `field` to with `field=value` (upstream `RequiresExactMatch`:
    /// the first equality term on that field; `!=` terms never pin). `spec.nodeName=` pins "".
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.operator == FieldOperator::Equals && r.field == field)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// Upstream `Selector.String`: `field=value` / `field!=value` with values re-escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            f.write_str(&r.field)?;
            f.write_str(match r.operator {
                FieldOperator::Equals => "=",
                FieldOperator::NotEquals => "!=",
            })?;
            f.write_str(&escape_value(&r.value))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Upstream `fields.EscapeValue`: prefixes `\`, `,` and `=` with a backslash.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits on commas that are not escaped by a backslash; the escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(s.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    terms.push(s.get(start..).unwrap_or_default());
    terms
}

/// Splits a term at the first operator; at each position `!=` is tried, then `==`, then `=`.
/// The field part has no escaping, so the first operator wins.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    const OPERATORS: [(&str, FieldOperator); 3] = [
        ("!=", FieldOperator::NotEquals),
        ("==", FieldOperator::Equals),
        ("=", FieldOperator::Equals),
    ];
    for (i, _) in term.char_indices() {
        let rest = term.get(i..).unwrap_or_default();
        for (text, op) in OPERATORS {
            if let Some(value) = rest.strip_prefix(text) {
                return Some((term.get(..i).unwrap_or_default(), op, value));
            }
        }
    }
    None
}

/// Upstream `fields.UnescapeValue`: `\\`, `\,` and `\=` are the only escapes, and bare `,` or
/// `=` are rejected.
fn unescape_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::FieldEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::FieldUnescaped(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::FieldEscape("\\".to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse_ok(s: &str) -> LabelSelector {
        match LabelSelector::parse(s) {
            Ok(sel) => sel,
            Err(e) => panic!("{s:?} should parse, got {e}"),
        }
    }

    fn parse_err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(sel) => panic!("{s:?} should be rejected, parsed as {sel}"),
            Err(e) => e.to_string(),
        }
    }

    const NAME_PART_REGEX: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_REGEX: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    #[test]
    fn label_selector_parses_every_operator_and_prints_it_back() {
        let cases = [
            ("x=a", "x=a", LabelOperator::Equals),
            ("x==a", "x==a", LabelOperator::DoubleEquals),
            ("x!=a", "x!=a", LabelOperator::NotEquals),
            ("x in (b,a)", "x in (a,b)", LabelOperator::In),
            ("x notin (a)", "x notin (a)", LabelOperator::NotIn),
            ("x", "x", LabelOperator::Exists),
            ("!x", "!x", LabelOperator::DoesNotExist),
            ("x>1", "x>1", LabelOperator::GreaterThan),
            ("x<7", "x<7", LabelOperator::LessThan),
        ];
        for (input, printed, op) in cases {
            let sel = parse_ok(input);
            assert_eq!(sel.to_string(), printed, "{input}");
            assert_eq!(sel.requirements().len(), 1, "{input}");
            assert_eq!(sel.requirements()[0].operator(), op, "{input}");
            assert_eq!(sel.requirements()[0].key(), "x", "{input}");
        }
    }

    #[test]
    fn label_selector_tolerates_whitespace_and_sorts_by_key() {
        let cases = [
            ("", ""),
            ("  ", ""),
            ("x=a,y=b,z=c", "x=a,y=b,z=c"),
            ("z=c, x=a ,y = b", "x=a,y=b,z=c"),
            ("\rx", "x"),
            ("a ", "a"),
            ("foo  in\t (abc)", "foo in (abc)"),
            ("x notin\n (abc)", "x notin (abc)"),
            ("x  notin\t\t(abc,def)", "x notin (abc,def)"),
            ("vendor in (MongoLabs)", "vendor in (MongoLabs)"),
            (
                "environment in (production, qa),tier notin (frontend, backend)",
                "environment in (production,qa),tier notin (backend,frontend)",
            ),
            ("x=a,a=x", "a=x,x=a"),
            (
                "this-is-a-dns.domain.com/key-with-dash",
                "this-is-a-dns.domain.com/key-with-dash",
            ),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
                "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
            ),
        ];
        for (input, printed) in cases {
            assert_eq!(parse_ok(input).to_string(), printed, "{input:?}");
        }
    }

    #[test]
    fn label_selector_accepts_empty_values() {
        let cases = [
            ("x=", "x="),
            ("x= ", "x="),
            ("x=,z= ", "x=,z="),
            ("x!=", "x!="),
            ("x in (abc,)", "x in (,abc)"),
            ("x notin (, a)", "x notin (,a)"),
            (
                "x notin (abc,,def),bar,z in (),w",
                "bar,w,x notin (,abc,def),z in ()",
            ),
        ];
        for (input, printed) in cases {
            assert_eq!(parse_ok(input).to_string(), printed, "{input:?}");
        }
    }

    #[test]
    fn label_selector_reads_empty_parentheses_as_the_empty_value_like_upstream() {
        // Upstream v1.32 does not reject `in ()`: it is the set {""}.
        let sel = parse_ok("x in ()");
        assert_eq!(sel.requirements()[0].values(), [String::new()]);
        assert!(sel.matches(&labels(&[("x", "")])));
        assert!(!sel.matches(&labels(&[("x", "a")])));
        assert!(!sel.matches(&labels(&[])));
        let sel = parse_ok("x notin ( )");
        assert!(sel.matches(&labels(&[])));
        assert!(!sel.matches(&labels(&[("x", "")])));
    }

    #[test]
    fn label_selector_treats_in_and_notin_as_identifiers_where_values_go() {
        let sel = parse_ok("a in (x,y,notin, z,in)");
        assert_eq!(sel.to_string(), "a in (in,notin,x,y,z)");
        assert!(parse_ok("notin=in").matches(&labels(&[("notin", "in")])));
        assert_eq!(parse_ok("in in (in)").to_string(), "in in (in)");
    }

    #[test]
    fn label_selector_matches_like_upstream() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x==y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("x", &[("x", "z")], true),
            ("!x", &[("y", "z")], true),
            ("x>1", &[("x", "2")], true),
            ("x<1", &[("x", "0")], true),
            ("x=", &[("x", "")], true),
            ("x!=y", &[], true),
            ("x notin (a)", &[], true),
            ("x notin (a)", &[("x", "b")], true),
            ("x in (a,b)", &[("x", "b")], true),
            ("vendor in (MongoLabs)", &[("vendor", "MongoLabs")], true),
            ("x=z", &[], false),
            ("x=", &[], false),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            ("x", &[("y", "z")], false),
            ("!x", &[("x", "z")], false),
            ("x>1", &[("x", "0")], false),
            ("x<1", &[("x", "2")], false),
            ("x>1", &[("x", "v2")], false),
            ("x>1", &[], false),
            ("x in (a,b)", &[("x", "c")], false),
            ("x in (a,b)", &[], false),
            ("x notin (a)", &[("x", "a")], false),
            ("x,y in (a)", &[("x", "1")], false),
        ];
        for (selector, set, expected) in cases {
            assert_eq!(
                parse_ok(selector).matches(&labels(set)),
                *expected,
                "{selector} against {set:?}"
            );
        }
    }

    #[test]
    fn label_selector_rejects_bad_syntax_with_upstreams_messages() {
        let ops = "in, notin, =, ==, !=, gt, lt";
        let cases = [
            ("a==b==c", "found '==', expected: ',' or 'end of string'".to_owned()),
            ("x==a==b", "found '==', expected: ',' or 'end of string'".to_owned()),
            ("!x=a", "found '=', expected: ',' or 'end of string'".to_owned()),
            ("x,,y", "found ',', expected: identifier after ','".to_owned()),
            (",x,y", "found ',', expected: !, identifier, or 'end of string'".to_owned()),
            ("a in (xyz),", "found '', expected: identifier after ','".to_owned()),
            ("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'".to_owned()),
            ("(", "found '(', expected: !, identifier, or 'end of string'".to_owned()),
            ("x=a||y=b", format!("unable to parse requirement: values[0][x]: Invalid value: \"a||y\": {LABEL_VALUE_REGEX}")),
            ("x nott in (y)", format!("unable to parse requirement: found 'nott', expected: {ops}")),
            ("a (", format!("unable to parse requirement: found '(', expected: {ops}")),
            ("x in", "unable to parse requirement: found '' expected: '('".to_owned()),
            ("a notin(", "unable to parse requirement: found '', expected: ',', ')' or identifier".to_owned()),
            ("a in (xyz abc)", "unable to parse requirement: found 'abc', expected: ',' or ')'".to_owned()),
            ("a in (x,=)", "unable to parse requirement: found '=', expected: ',', or identifier".to_owned()),
            ("x=(", "unable to parse requirement: found '(', expected: identifier".to_owned()),
            ("!", "unable to parse requirement: found '', expected: identifier".to_owned()),
            ("!=a", "found '!=', expected: !, identifier, or 'end of string'".to_owned()),
            ("x<a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".to_owned()),
            // v1.32 consumes the second of two adjacent commas, so a value list ending in ",,)" fails.
            ("x in (a,,)", "unable to parse requirement: found ')', expected: ',', or identifier".to_owned()),
        ];
        for (input, message) in cases {
            assert_eq!(parse_err(input), message, "{input:?}");
        }
        assert_eq!(parse_ok("x in (a,,b)").to_string(), "x in (,a,b)");
    }

    #[test]
    fn label_selector_rejects_invalid_keys_with_the_qualified_name_message() {
        let long_name = "a".repeat(64);
        let long_prefix = format!("{}/a", "a".repeat(254));
        let cases = [
            ("x_=a", format!("unable to parse requirement: <nil>: Invalid value: \"x_\": {NAME_PART_REGEX}")),
            ("-x", format!("unable to parse requirement: <nil>: Invalid value: \"-x\": {NAME_PART_REGEX}")),
            ("k@y in (a)", format!("unable to parse requirement: <nil>: Invalid value: \"k@y\": {NAME_PART_REGEX}")),
            (long_name.as_str(), format!("unable to parse requirement: <nil>: Invalid value: \"{long_name}\": name part must be no more than 63 characters")),
            ("/x", "unable to parse requirement: <nil>: Invalid value: \"/x\": prefix part must be non-empty".to_owned()),
            ("example.com/", format!("unable to parse requirement: <nil>: Invalid value: \"example.com/\": name part must be non-empty; {NAME_PART_REGEX}")),
            ("Example.com/x", "unable to parse requirement: <nil>: Invalid value: \"Example.com/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_owned()),
            ("a/b/c", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_owned()),
            ("k\u{1}y", format!("unable to parse requirement: <nil>: Invalid value: \"k\\x01y\": {NAME_PART_REGEX}")),
        ];
        for (input, message) in cases {
            assert_eq!(parse_err(input), message, "{input:?}");
        }
        let err = parse_err(&long_prefix);
        assert!(
            err.contains("prefix part must be no more than 253 characters"),
            "{err}"
        );
    }

    #[test]
    fn label_selector_rejects_invalid_values_with_the_label_value_message() {
        let long = "a".repeat(64);
        let cases = [
            (format!("x={long}"), format!("unable to parse requirement: values[0][x]: Invalid value: \"{long}\": must be no more than 63 characters")),
            ("x=-a".to_owned(), format!("unable to parse requirement: values[0][x]: Invalid value: \"-a\": {LABEL_VALUE_REGEX}")),
            ("x in (b, a_)".to_owned(), format!("unable to parse requirement: values[0][x]: Invalid value: \"a_\": {LABEL_VALUE_REGEX}")),
            ("x in (a_,b_)".to_owned(), format!("unable to parse requirement: [values[0][x]: Invalid value: \"a_\": {LABEL_VALUE_REGEX}, values[1][x]: Invalid value: \"b_\": {LABEL_VALUE_REGEX}]")),
            (format!("x={long}_"), format!("unable to parse requirement: values[0][x]: Invalid value: \"{long}_\": must be no more than 63 characters; {LABEL_VALUE_REGEX}")),
        ];
        for (input, message) in cases {
            assert_eq!(parse_err(&input), message, "{input:?}");
        }
        assert!(LabelSelector::parse(&format!("x={}", "a".repeat(63))).is_ok());
    }

    #[test]
    fn label_selector_stops_at_a_nul_byte_where_a_token_would_start_like_upstream() {
        assert_eq!(parse_ok("a \0 junk (").to_string(), "a");
    }

    #[test]
    fn label_selector_everything_is_empty_and_matches_all() {
        let everything = LabelSelector::everything();
        assert!(everything.is_empty());
        assert!(everything.matches(&labels(&[("x", "y")])));
        assert!(parse_ok("").is_empty());
        assert!(!parse_ok("x").is_empty());
    }

    #[test]
    fn label_selector_reports_the_value_a_key_is_pinned_to() {
        let cases = [
            ("app=web", "app", Some("web")),
            ("app==web", "app", Some("web")),
            ("app in (web)", "app", Some("web")),
            ("app in (web,db)", "app", None),
            ("app!=web", "app", None),
            ("app", "app", None),
            ("tier=x", "app", None),
            ("app=", "app", Some("")),
        ];
        for (input, label, expected) in cases {
            assert_eq!(
                parse_ok(input).requires_exact_match(label),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn label_selector_from_set_requires_every_pair() {
        let sel = LabelSelector::from_set(&labels(&[("app", "web"), ("tier", "fe")]));
        assert_eq!(sel.to_string(), "app=web,tier=fe");
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "fe"), ("x", "y")])));
        assert!(!sel.matches(&labels(&[("app", "web")])));
        assert!(LabelSelector::from_set(&BTreeMap::new()).is_empty());
    }

    fn field_ok(s: &str) -> FieldSelector {
        match FieldSelector::parse(s) {
            Ok(sel) => sel,
            Err(e) => panic!("{s:?} should parse, got {e}"),
        }
    }

    fn field_err(s: &str) -> String {
        match FieldSelector::parse(s) {
            Ok(sel) => panic!("{s:?} should be rejected, parsed as {sel}"),
            Err(e) => e.to_string(),
        }
    }

    fn req(field: &str, operator: FieldOperator, value: &str) -> FieldRequirement {
        FieldRequirement {
            field: field.to_owned(),
            operator,
            value: value.to_owned(),
        }
    }

    #[test]
    fn field_selector_parses_terms_in_sorted_order() {
        use FieldOperator::{Equals, NotEquals};
        let cases = [
            ("", vec![]),
            (",", vec![]),
            ("=", vec![]),
            (
                "metadata.name=foo",
                vec![req("metadata.name", Equals, "foo")],
            ),
            (
                "metadata.name==foo",
                vec![req("metadata.name", Equals, "foo")],
            ),
            (
                "metadata.name!=foo",
                vec![req("metadata.name", NotEquals, "foo")],
            ),
            ("spec.nodeName=", vec![req("spec.nodeName", Equals, "")]),
            (
                "status.phase!=Failed,status.phase!=Succeeded",
                vec![
                    req("status.phase", NotEquals, "Failed"),
                    req("status.phase", NotEquals, "Succeeded"),
                ],
            ),
            (
                "x=a,a=x,",
                vec![req("a", Equals, "x"), req("x", Equals, "a")],
            ),
            ("a!b=c", vec![req("a!b", Equals, "c")]),
            (" a = b", vec![req(" a ", Equals, " b")]),
            ("함=수", vec![req("함", Equals, "수")]),
        ];
        for (input, expected) in cases {
            assert_eq!(
                field_ok(input).requirements(),
                expected.as_slice(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn field_selector_unescapes_values() {
        let cases = [
            (r"k=\,", ","),
            (r"k=\=", "="),
            (r"k=\\", "\\"),
            (r"k=a\,b\=c\\d", r"a,b=c\d"),
            (r"k=\\\,", r"\,"),
        ];
        for (input, value) in cases {
            let sel = field_ok(input);
            assert_eq!(
                sel.requirements(),
                [req("k", FieldOperator::Equals, value)],
                "{input}"
            );
            assert_eq!(sel.to_string(), input, "{input}");
        }
        let sel = field_ok(r"k=\,,k2=v2");
        assert_eq!(sel.requirements().len(), 2);
        assert_eq!(escape_value(r"\=\,\"), r"\\\=\\\,\\");
    }

    #[test]
    fn field_selector_rejects_malformed_terms_with_upstreams_messages() {
        let cases = [
            ("x", "invalid selector: 'x'; can't understand 'x'"),
            ("x=a,b", "invalid selector: 'x=a,b'; can't understand 'b'"),
            (
                "x in (a)",
                "invalid selector: 'x in (a)'; can't understand 'x in (a)'",
            ),
            (
                "x in (a,b,c)",
                "invalid selector: 'x in (a,b,c)'; can't understand 'b'",
            ),
            (
                "x==a==b",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "x=a||y=b",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                r"k=\a",
                r"invalid field selector: invalid escape sequence: \a",
            ),
            (
                r"k=\",
                r"invalid field selector: invalid escape sequence: \",
            ),
            (
                r"k=\\\",
                r"invalid field selector: invalid escape sequence: \",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(field_err(input), message, "{input:?}");
        }
    }

    #[test]
    fn field_selector_matches_through_the_lookup() {
        let pod = |field: &str| -> Option<String> {
            match field {
                "metadata.name" => Some("web-1".to_owned()),
                "spec.nodeName" => Some(String::new()),
                "status.phase" => Some("Running".to_owned()),
                _ => None,
            }
        };
        let cases = [
            ("", true),
            ("metadata.name=web-1", true),
            ("metadata.name==web-1", true),
            ("metadata.name!=web-1", false),
            ("metadata.name=web-2", false),
            ("spec.nodeName=", true),
            ("spec.nodeName!=", false),
            ("status.phase!=Failed,status.phase!=Succeeded", true),
            ("status.phase!=Running,status.phase!=Succeeded", false),
            ("metadata.name=web-1,status.phase=Running", true),
            ("unknown=", true),
        ];
        for (input, expected) in cases {
            assert_eq!(field_ok(input).matches(pod), expected, "{input}");
        }
    }

    #[test]
    fn field_selector_pins_a_field_only_with_equality() {
        let cases = [
            ("spec.nodeName=node-1", "spec.nodeName", Some("node-1")),
            ("spec.nodeName==node-1", "spec.nodeName", Some("node-1")),
            ("spec.nodeName=", "spec.nodeName", Some("")),
            ("spec.nodeName!=node-1", "spec.nodeName", None),
            ("metadata.name=a", "spec.nodeName", None),
            ("", "spec.nodeName", None),
            (
                "spec.nodeName!=x,spec.nodeName=y",
                "spec.nodeName",
                Some("y"),
            ),
        ];
        for (input, field, expected) in cases {
            assert_eq!(field_ok(input).required_value(field), expected, "{input}");
        }
        assert!(FieldSelector::everything().is_empty());
    }

    #[test]
    fn selectors_never_panic_on_arbitrary_input() {
        let alphabet: Vec<char> = "ab=!(),<> \t\\in\0é-_./0123456789".chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = (state >> 59) as usize;
            let mut s = String::new();
            let mut x = state;
            for _ in 0..len {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                s.push(alphabet[(x >> 33) as usize % alphabet.len()]);
            }
            if let Ok(sel) = LabelSelector::parse(&s) {
                // A parsed selector prints as something that parses to the same selector.
                let again = LabelSelector::parse(&sel.to_string());
                assert_eq!(again.as_ref().ok(), Some(&sel), "{s:?} -> {sel}");
            }
            if let Ok(sel) = FieldSelector::parse(&s) {
                // Printing may reorder terms (`==` prints as `=`), so compare them as sets.
                let terms = |sel: &FieldSelector| {
                    let mut terms: Vec<String> = sel
                        .requirements()
                        .iter()
                        .map(|r| format!("{:?}\0{:?}\0{:?}", r.field, r.operator, r.value))
                        .collect();
                    terms.sort();
                    terms
                };
                let again = FieldSelector::parse(&sel.to_string());
                assert_eq!(
                    again.as_ref().ok().map(terms),
                    Some(terms(&sel)),
                    "{s:?} -> {sel}"
                );
            }
        }
    }
}
