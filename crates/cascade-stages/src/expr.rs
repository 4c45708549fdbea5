//! Row predicates: boolean expressions over the columns of a batch, written in SQL as in a
//! DataFusion or DuckDB `WHERE` clause, for the `filter` stage and the stereo stage's
//! quality criteria.
//!
//! ```text
//! hillas_intensity > 100 AND leakage_intensity_width_2 < 0.2
//! NOT (morphology_n_pixels <= 3) OR tel_id = 1
//! isfinite(hillas_width) AND hillas_width / hillas_length > 0.1
//! ```
//!
//! # Syntax
//!
//! | what | syntax |
//! |---|---|
//! | comparisons | `>` `>=` `<` `<=` `=` `!=` (also `<>`) |
//! | logic | `AND`, `OR`, `NOT`, parentheses (keywords in any case) |
//! | arithmetic | `+` `-` `*` `/`, unary `-` |
//! | literals | numbers (`50`, `0.2`, `1e3`), `'strings'`, `TRUE`, `FALSE`, `NULL` |
//! | columns | names of the input columns; unquoted names are lower-cased as in DataFusion, `"Quoted"` names are taken as written |
//! | null tests | `x IS NULL`, `x IS NOT NULL` |
//! | functions | `isnan(x)`, `isfinite(x)` (neither NaN nor infinite), `abs(x)` |
//!
//! Number, string and boolean columns can be used; list columns (images) cannot.
//!
//! # Semantics
//!
//! * **NaN** compares as in numpy, and so as in ctapipe's quality queries: `<`, `<=`, `>`,
//!   `>=` and `=` are false when either side is NaN, `!=` is true (IEEE 754; `-0.0 = 0.0`).
//!   Arrow's comparison kernels, which DataFusion uses, order NaN above every number
//!   instead, so floats are compared here with IEEE semantics.
//! * **Null** follows SQL: a comparison with null is null, `AND`/`OR` are three-valued, and a
//!   row whose condition is null is not selected (as in `WHERE`).
//! * **Numbers**: two integers compare as `i64`, anything involving a float as `f64`;
//!   arithmetic is done in `f64` (`/` is true division, as in numpy).
//!
//! # Use
//!
//! [`Expression::parse`] checks the syntax (when a stage is built), [`Expression::bind`]
//! checks names and types against the input schema (when the pipeline is checked, so
//! `cascade validate` reports unknown columns with a "did you mean"), and
//! [`Predicate::evaluate`] computes the condition for a whole batch at once with Arrow
//! kernels. Every error is an [`ExprError`] with the position in the expression.
//!
//! The parser is `sqlparser`, DataFusion's. The evaluator is not
//! `datafusion-physical-expr`: its binary expressions expect operands already coerced to
//! one type by the logical planner and compare floats by Arrow's total order, so both would
//! need wrapping; here they are a few Arrow kernels.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray, new_null_array,
};
use arrow::compute::kernels::{boolean, cmp, numeric};
use arrow::compute::{cast, filter_record_batch, is_not_null, is_null};
use arrow::datatypes::{DataType, Float64Type, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use sqlparser::ast::{
    BinaryOperator, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    Ident, Spanned, UnaryOperator, Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, Tokenizer};

/// Where in an expression: 1-based line and character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line (1 for single-line expressions).
    pub line: usize,
    /// Character in the line.
    pub column: usize,
}

impl Position {
    fn of(location: Location) -> Option<Self> {
        (location.line > 0).then(|| Self {
            line: usize::try_from(location.line).unwrap_or(usize::MAX),
            column: usize::try_from(location.column).unwrap_or(usize::MAX),
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 1 {
            write!(f, "character {}", self.column)
        } else {
            write!(f, "line {}, character {}", self.line, self.column)
        }
    }
}

/// " at character N", or nothing when the position is unknown.
fn at(position: &Option<Position>) -> String {
    position.map_or_else(String::new, |p| format!(" at {p}"))
}

/// Why an expression cannot be parsed, checked or evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// The text is not an expression.
    #[error("syntax error{}: {message}", at(.position))]
    Syntax {
        /// What the parser expected or found.
        message: String,
        /// Where.
        position: Option<Position>,
    },
    /// A name that is not a column of the input.
    #[error("unknown column `{name}`{}{}", at(.position),
            .suggestion.as_ref().map_or_else(String::new, |s| format!("; {s}")))]
    UnknownColumn {
        /// The name as written.
        name: String,
        /// Where.
        position: Option<Position>,
        /// "did you mean `...`?", from the input's columns.
        suggestion: Option<String>,
    },
    /// A column whose type has no comparisons (a list, a struct...).
    #[error("column `{name}` has type {data_type}{}: only number, string and boolean columns \
             can be used", at(.position))]
    UnsupportedColumn {
        /// The column.
        name: String,
        /// Its Arrow type.
        data_type: String,
        /// Where.
        position: Option<Position>,
    },
    /// A part that must be a condition (true or false) is not, e.g. the whole
    /// expression `hillas_intensity + 1`, or an operand of `AND`.
    #[error("`{expression}` is {found}, not a condition (true or false){}", at(.position))]
    NotBoolean {
        /// The offending part.
        expression: String,
        /// What it is ("a float", "a string"...).
        found: &'static str,
        /// Where.
        position: Option<Position>,
    },
    /// A comparison between values of different kinds, e.g. a number and a string.
    #[error("cannot compare `{left}` ({left_type}) with `{right}` ({right_type}){}", at(.position))]
    IncompatibleTypes {
        /// The left operand.
        left: String,
        /// What it is.
        left_type: &'static str,
        /// The right operand.
        right: String,
        /// What it is.
        right_type: &'static str,
        /// Where.
        position: Option<Position>,
    },
    /// Arithmetic or a numeric function on something that is not a number.
    #[error("`{operation}` needs numbers, but `{operand}` is {found}{}", at(.position))]
    NotNumeric {
        /// The operation (`+`, `isnan`...).
        operation: String,
        /// The operand.
        operand: String,
        /// What it is.
        found: &'static str,
        /// Where.
        position: Option<Position>,
    },
    /// Valid SQL that predicates do not support (subqueries, `LIKE`, unknown functions...).
    #[error("{what} is not supported{}: use comparisons (> >= < <= = !=), AND, OR, NOT, \
             IS [NOT] NULL, + - * /, isnan(), isfinite() and abs()", at(.position))]
    Unsupported {
        /// The construct.
        what: String,
        /// Where.
        position: Option<Position>,
    },
    /// A kernel failed on a batch (e.g. the batch does not have the schema the predicate
    /// was checked against).
    #[error("evaluating the expression: {message}")]
    Evaluation {
        /// The Arrow error.
        message: String,
    },
}

impl ExprError {
    /// The character (1-based) of a one-line expression where the problem is, when known.
    pub fn character(&self) -> Option<usize> {
        let position = match self {
            ExprError::Syntax { position, .. }
            | ExprError::UnknownColumn { position, .. }
            | ExprError::UnsupportedColumn { position, .. }
            | ExprError::NotBoolean { position, .. }
            | ExprError::IncompatibleTypes { position, .. }
            | ExprError::NotNumeric { position, .. }
            | ExprError::Unsupported { position, .. } => position,
            ExprError::Evaluation { .. } => &None,
        };
        position.filter(|p| p.line == 1).map(|p| p.column)
    }
}

impl From<ArrowError> for ExprError {
    fn from(error: ArrowError) -> Self {
        ExprError::Evaluation {
            message: error.to_string(),
        }
    }
}

/// A syntactically valid expression, not yet checked against a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    text: String,
    ast: Expr,
}

impl Expression {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`ExprError::Syntax`] with the position of the problem.
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        let dialect = GenericDialect {};
        let tokens = Tokenizer::new(&dialect, text)
            .tokenize_with_location()
            .map_err(|e| ExprError::Syntax {
                message: e.message,
                position: Position::of(e.location),
            })?;
        let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
        let ast = parser
            .parse_expr()
            .map_err(|e| syntax_error(e, end_of(text)))?;
        let next = parser.peek_token();
        if next.token != Token::EOF {
            return Err(ExprError::Syntax {
                message: format!("unexpected `{}` after the expression", next.token),
                position: Position::of(next.span.start),
            });
        }
        Ok(Self {
            text: text.to_string(),
            ast,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Checks the expression against `schema`: every name is a column, types fit, and the
    /// whole is a condition.
    ///
    /// # Errors
    /// The first problem found, as an [`ExprError`].
    pub fn bind(&self, schema: &Schema) -> Result<Predicate, ExprError> {
        let (root, ty) = Binder { schema }.bind(&self.ast)?;
        expect_boolean(&self.ast, ty)?;
        Ok(Predicate {
            text: self.text.clone(),
            root,
        })
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The position just after the last character of `text`.
fn end_of(text: &str) -> Position {
    let line = text.split('\n').count();
    let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Position { line, column }
}

/// A parser error with the position sqlparser appends to its message
/// (" at Line: L, Column: C") taken out; errors at the end of the text, which sqlparser
/// gives no position, are placed at `end`.
fn syntax_error(error: ParserError, end: Position) -> ExprError {
    match error {
        ParserError::RecursionLimitExceeded => ExprError::Syntax {
            message: "the expression is nested too deeply".to_string(),
            position: None,
        },
        ParserError::TokenizerError(message) | ParserError::ParserError(message) => {
            let parsed = message.rsplit_once(" at Line: ").and_then(|(text, place)| {
                let (line, column) = place.split_once(", Column: ")?;
                let position = Position {
                    line: line.trim().parse().ok()?,
                    column: column.trim().parse().ok()?,
                };
                Some((text.to_string(), position))
            });
            match parsed {
                Some((message, position)) => ExprError::Syntax {
                    message,
                    position: Some(position),
                },
                None if message.ends_with("found: EOF") => ExprError::Syntax {
                    message: format!("{}the end", message.trim_end_matches("EOF")),
                    position: Some(end),
                },
                None => ExprError::Syntax {
                    message,
                    position: None,
                },
            }
        }
    }
}

/// An expression checked against a schema, ready to evaluate on batches of that schema.
#[derive(Debug, Clone)]
pub struct Predicate {
    text: String,
    root: Node,
}

impl Predicate {
    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The condition for every row of `batch`: true where it holds, false where it does not
    /// or is null. The result has no nulls.
    ///
    /// # Errors
    /// [`ExprError::UnknownColumn`] or [`ExprError::Evaluation`] when the batch does not
    /// have the schema the predicate was checked against.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, ExprError> {
        let value = self.root.evaluate(batch)?;
        let Some(mask) = value.as_boolean_opt() else {
            // Only a NULL literal gets here: it selects nothing.
            return Ok(BooleanArray::from(vec![false; batch.num_rows()]));
        };
        Ok(match mask.nulls() {
            Some(nulls) => BooleanArray::new(mask.values() & nulls.inner(), None),
            None => mask.clone(),
        })
    }

    /// The rows of `batch` where the condition holds.
    ///
    /// # Errors
    /// As [`Predicate::evaluate`].
    pub fn filter(&self, batch: &RecordBatch) -> Result<RecordBatch, ExprError> {
        let mask = self.evaluate(batch)?;
        if mask.true_count() == batch.num_rows() {
            return Ok(batch.clone());
        }
        Ok(filter_record_batch(batch, &mask)?)
    }
}

/// What a part of an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Bool,
    Int,
    Float,
    Str,
    Null,
}

impl Ty {
    fn of(data_type: &DataType) -> Option<Self> {
        match data_type {
            DataType::Boolean => Some(Ty::Bool),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => Some(Ty::Int),
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Some(Ty::Float),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Ty::Str),
            DataType::Null => Some(Ty::Null),
            _ => None,
        }
    }

    fn is_numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Null)
    }

    /// As in "... is a float".
    fn article_name(self) -> &'static str {
        match self {
            Ty::Bool => "a condition",
            Ty::Int => "an integer",
            Ty::Float => "a float",
            Ty::Str => "a string",
            Ty::Null => "null",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ty::Bool => "boolean",
            Ty::Int => "integer",
            Ty::Float => "float",
            Ty::Str => "string",
            Ty::Null => "null",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Lt,
    LtEq,
    Gt,
    GtEq,
    Eq,
    NotEq,
}

impl Comparison {
    fn floats(self, a: f64, b: f64) -> bool {
        match self {
            Comparison::Lt => a < b,
            Comparison::LtEq => a <= b,
            Comparison::Gt => a > b,
            Comparison::GtEq => a >= b,
            Comparison::Eq => a == b,
            Comparison::NotEq => a != b,
        }
    }

    fn arrays(self, a: &ArrayRef, b: &ArrayRef) -> Result<BooleanArray, ArrowError> {
        match self {
            Comparison::Lt => cmp::lt(a, b),
            Comparison::LtEq => cmp::lt_eq(a, b),
            Comparison::Gt => cmp::gt(a, b),
            Comparison::GtEq => cmp::gt_eq(a, b),
            Comparison::Eq => cmp::eq(a, b),
            Comparison::NotEq => cmp::neq(a, b),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arithmetic {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FloatTest {
    IsNan,
    IsFinite,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
}

/// A checked expression node.
#[derive(Debug, Clone)]
enum Node {
    Column(String),
    Literal(Literal),
    /// Both operands are converted to `common` before comparing.
    Compare {
        op: Comparison,
        common: Ty,
        left: Box<Node>,
        right: Box<Node>,
    },
    Arithmetic {
        op: Arithmetic,
        left: Box<Node>,
        right: Box<Node>,
    },
    Negate {
        ty: Ty,
        operand: Box<Node>,
    },
    Abs(Box<Node>),
    FloatTest(FloatTest, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    IsNull {
        negated: bool,
        operand: Box<Node>,
    },
}

impl Node {
    /// The node's value for every row of `batch`.
    fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef, ExprError> {
        let n = batch.num_rows();
        Ok(match self {
            Node::Column(name) => {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| ExprError::UnknownColumn {
                        name: name.clone(),
                        position: None,
                        suggestion: None,
                    })?
            }
            Node::Literal(literal) => literal_array(literal, n),
            Node::Compare {
                op,
                common,
                left,
                right,
            } => {
                let (left, right) = (left.evaluate(batch)?, right.evaluate(batch)?);
                Arc::new(compare(*op, *common, &left, &right)?)
            }
            Node::Arithmetic { op, left, right } => {
                let left = floats(&left.evaluate(batch)?)?;
                let right = floats(&right.evaluate(batch)?)?;
                let result: Float64Array = match op {
                    Arithmetic::Add => arrow::compute::binary(&left, &right, |a, b| a + b)?,
                    Arithmetic::Sub => arrow::compute::binary(&left, &right, |a, b| a - b)?,
                    Arithmetic::Mul => arrow::compute::binary(&left, &right, |a, b| a * b)?,
                    Arithmetic::Div => arrow::compute::binary(&left, &right, |a, b| a / b)?,
                };
                Arc::new(result)
            }
            Node::Negate { ty, operand } => {
                let value = operand.evaluate(batch)?;
                match ty {
                    Ty::Int => numeric::neg(&cast(&value, &DataType::Int64)?)?,
                    _ => Arc::new(floats(&value)?.unary::<_, Float64Type>(|x| -x)),
                }
            }
            Node::Abs(operand) => {
                Arc::new(floats(&operand.evaluate(batch)?)?.unary::<_, Float64Type>(f64::abs))
            }
            Node::FloatTest(test, operand) => {
                let values = floats(&operand.evaluate(batch)?)?;
                Arc::new(match test {
                    FloatTest::IsNan => BooleanArray::from_unary(&values, f64::is_nan),
                    FloatTest::IsFinite => BooleanArray::from_unary(&values, f64::is_finite),
                })
            }
            Node::And(left, right) => Arc::new(boolean::and_kleene(
                &booleans(&left.evaluate(batch)?)?,
                &booleans(&right.evaluate(batch)?)?,
            )?),
            Node::Or(left, right) => Arc::new(boolean::or_kleene(
                &booleans(&left.evaluate(batch)?)?,
                &booleans(&right.evaluate(batch)?)?,
            )?),
            Node::Not(operand) => Arc::new(boolean::not(&booleans(&operand.evaluate(batch)?)?)?),
            Node::IsNull { negated, operand } => {
                let value = operand.evaluate(batch)?;
                Arc::new(if *negated {
                    is_not_null(&value)?
                } else {
                    is_null(&value)?
                })
            }
        })
    }
}

fn literal_array(literal: &Literal, n: usize) -> ArrayRef {
    match literal {
        Literal::Int(v) => Arc::new(Int64Array::from_value(*v, n)),
        Literal::Float(v) => Arc::new(Float64Array::from_value(*v, n)),
        Literal::Str(v) => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n))),
        Literal::Bool(v) => Arc::new(BooleanArray::from(vec![*v; n])),
        Literal::Null => new_null_array(&DataType::Null, n),
    }
}

/// `value` as f64 (integers converted, nulls kept).
fn floats(value: &ArrayRef) -> Result<Float64Array, ArrowError> {
    Ok(cast(value, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

/// `value` as a boolean array (a null array becomes all-null booleans).
fn booleans(value: &ArrayRef) -> Result<BooleanArray, ArrowError> {
    Ok(cast(value, &DataType::Boolean)?.as_boolean().clone())
}

fn compare(
    op: Comparison,
    common: Ty,
    left: &ArrayRef,
    right: &ArrayRef,
) -> Result<BooleanArray, ArrowError> {
    match common {
        Ty::Float => Ok(BooleanArray::from_binary(
            &floats(left)?,
            &floats(right)?,
            |a, b| op.floats(a, b),
        )),
        Ty::Int => op.arrays(
            &cast(left, &DataType::Int64)?,
            &cast(right, &DataType::Int64)?,
        ),
        Ty::Str => op.arrays(
            &cast(left, &DataType::Utf8)?,
            &cast(right, &DataType::Utf8)?,
        ),
        Ty::Bool => op.arrays(left, right),
        Ty::Null => Ok(BooleanArray::new_null(left.len())),
    }
}

/// The part of an expression that must be a condition is one.
fn expect_boolean(expr: &Expr, ty: Ty) -> Result<(), ExprError> {
    match ty {
        Ty::Bool | Ty::Null => Ok(()),
        other => Err(ExprError::NotBoolean {
            expression: expr.to_string(),
            found: other.article_name(),
            position: Position::of(expr.span().start),
        }),
    }
}

fn expect_numeric(operation: &str, expr: &Expr, ty: Ty) -> Result<(), ExprError> {
    if ty.is_numeric() {
        return Ok(());
    }
    Err(ExprError::NotNumeric {
        operation: operation.to_string(),
        operand: expr.to_string(),
        found: ty.article_name(),
        position: Position::of(expr.span().start),
    })
}

/// Checks names and types of a parsed expression against a schema.
struct Binder<'a> {
    schema: &'a Schema,
}

impl Binder<'_> {
    fn bind(&self, expr: &Expr) -> Result<(Node, Ty), ExprError> {
        let position = Position::of(expr.span().start);
        let unsupported = |what: String| ExprError::Unsupported { what, position };
        match expr {
            Expr::Identifier(ident) => self.column(ident),
            Expr::CompoundIdentifier(parts) => Err(self.dotted_name(parts)),
            Expr::Nested(inner) => self.bind(inner),
            Expr::Value(value) => literal(&value.value)
                .map(|l| {
                    let ty = match l {
                        Literal::Int(_) => Ty::Int,
                        Literal::Float(_) => Ty::Float,
                        Literal::Str(_) => Ty::Str,
                        Literal::Bool(_) => Ty::Bool,
                        Literal::Null => Ty::Null,
                    };
                    (Node::Literal(l), ty)
                })
                .ok_or_else(|| unsupported(format!("the literal `{value}`"))),
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
                let (operand, _) = self.bind(inner)?;
                let negated = matches!(expr, Expr::IsNotNull(_));
                Ok((
                    Node::IsNull {
                        negated,
                        operand: Box::new(operand),
                    },
                    Ty::Bool,
                ))
            }
            Expr::UnaryOp { op, expr: inner } => {
                let (operand, ty) = self.bind(inner)?;
                match op {
                    UnaryOperator::Not => {
                        expect_boolean(inner, ty)?;
                        Ok((Node::Not(Box::new(operand)), Ty::Bool))
                    }
                    UnaryOperator::Minus => {
                        expect_numeric("-", inner, ty)?;
                        let node = match operand {
                            Node::Literal(Literal::Int(v)) => Node::Literal(
                                v.checked_neg()
                                    .map_or(Literal::Float(-(v as f64)), Literal::Int),
                            ),
                            Node::Literal(Literal::Float(v)) => Node::Literal(Literal::Float(-v)),
                            operand => Node::Negate {
                                ty,
                                operand: Box::new(operand),
                            },
                        };
                        Ok((node, ty))
                    }
                    UnaryOperator::Plus => {
                        expect_numeric("+", inner, ty)?;
                        Ok((operand, ty))
                    }
                    other => Err(unsupported(format!("the operator `{other}`"))),
                }
            }
            Expr::BinaryOp { left, op, right } => self.binary(left, op, right, position),
            Expr::Function(function) => self.function(function, position),
            other => Err(unsupported(format!("`{other}`"))),
        }
    }

    fn binary(
        &self,
        left_expr: &Expr,
        op: &BinaryOperator,
        right_expr: &Expr,
        position: Option<Position>,
    ) -> Result<(Node, Ty), ExprError> {
        let (left, left_ty) = self.bind(left_expr)?;
        let (right, right_ty) = self.bind(right_expr)?;
        let comparison = match op {
            BinaryOperator::Lt => Some(Comparison::Lt),
            BinaryOperator::LtEq => Some(Comparison::LtEq),
            BinaryOperator::Gt => Some(Comparison::Gt),
            BinaryOperator::GtEq => Some(Comparison::GtEq),
            BinaryOperator::Eq => Some(Comparison::Eq),
            BinaryOperator::NotEq => Some(Comparison::NotEq),
            _ => None,
        };
        if let Some(op) = comparison {
            let common = match (left_ty, right_ty) {
                (Ty::Null, _) | (_, Ty::Null) => Ty::Null,
                (Ty::Int, Ty::Int) => Ty::Int,
                (Ty::Int | Ty::Float, Ty::Int | Ty::Float) => Ty::Float,
                (a, b) if a == b => a,
                _ => {
                    return Err(ExprError::IncompatibleTypes {
                        left: left_expr.to_string(),
                        left_type: left_ty.name(),
                        right: right_expr.to_string(),
                        right_type: right_ty.name(),
                        position,
                    });
                }
            };
            let node = Node::Compare {
                op,
                common,
                left: Box::new(left),
                right: Box::new(right),
            };
            return Ok((node, Ty::Bool));
        }
        let (left, right) = (Box::new(left), Box::new(right));
        match op {
            BinaryOperator::And | BinaryOperator::Or => {
                expect_boolean(left_expr, left_ty)?;
                expect_boolean(right_expr, right_ty)?;
                let node = if *op == BinaryOperator::And {
                    Node::And(left, right)
                } else {
                    Node::Or(left, right)
                };
                Ok((node, Ty::Bool))
            }
            BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide => {
                let symbol = op.to_string();
                expect_numeric(&symbol, left_expr, left_ty)?;
                expect_numeric(&symbol, right_expr, right_ty)?;
                let op = match op {
                    BinaryOperator::Plus => Arithmetic::Add,
                    BinaryOperator::Minus => Arithmetic::Sub,
                    BinaryOperator::Multiply => Arithmetic::Mul,
                    _ => Arithmetic::Div,
                };
                Ok((Node::Arithmetic { op, left, right }, Ty::Float))
            }
            other => Err(ExprError::Unsupported {
                what: format!("the operator `{other}`"),
                position,
            }),
        }
    }

    fn function(
        &self,
        function: &sqlparser::ast::Function,
        position: Option<Position>,
    ) -> Result<(Node, Ty), ExprError> {
        let name = function.name.to_string().to_lowercase();
        let unsupported = |what: String| ExprError::Unsupported { what, position };
        let argument = match &function.args {
            FunctionArguments::List(list)
                if list.args.len() == 1
                    && list.clauses.is_empty()
                    && list.duplicate_treatment != Some(DuplicateTreatment::Distinct) =>
            {
                match &list.args[0] {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) => Some(arg),
                    _ => None,
                }
            }
            _ => None,
        };
        let plain = function.filter.is_none()
            && function.over.is_none()
            && function.within_group.is_empty()
            && matches!(function.parameters, FunctionArguments::None);
        let (Some(argument), true) = (argument, plain) else {
            return Err(unsupported(format!(
                "`{function}` (functions take one argument: {name}(x))"
            )));
        };
        let (operand, ty) = self.bind(argument)?;
        let operand = Box::new(operand);
        let node = match name.as_str() {
            "isnan" => Node::FloatTest(FloatTest::IsNan, operand),
            "isfinite" => Node::FloatTest(FloatTest::IsFinite, operand),
            "abs" => Node::Abs(operand),
            _ => return Err(unsupported(format!("the function `{name}`"))),
        };
        expect_numeric(&name, argument, ty)?;
        let ty = if name == "abs" { Ty::Float } else { Ty::Bool };
        Ok((node, ty))
    }

    /// A column: unquoted names are lower-cased (DataFusion's rule).
    fn column(&self, ident: &Ident) -> Result<(Node, Ty), ExprError> {
        let name = match ident.quote_style {
            None => ident.value.to_lowercase(),
            Some(_) => ident.value.clone(),
        };
        let position = Position::of(ident.span.start);
        let field = self
            .schema
            .field_with_name(&name)
            .map_err(|_| ExprError::UnknownColumn {
                suggestion: self.suggest(&name),
                name: name.clone(),
                position,
            })?;
        let ty = Ty::of(field.data_type()).ok_or_else(|| ExprError::UnsupportedColumn {
            name: name.clone(),
            data_type: field.data_type().to_string(),
            position,
        })?;
        Ok((Node::Column(name), ty))
    }

    /// `hillas.intensity` (ctapipe's container path): columns are flat, so suggest
    /// `hillas_intensity` (without a leading `parameters.`).
    fn dotted_name(&self, parts: &[Ident]) -> ExprError {
        let written: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
        let flat: Vec<String> = written
            .iter()
            .skip(usize::from(written.first() == Some(&"parameters")))
            .map(|p| p.to_lowercase())
            .collect();
        ExprError::UnknownColumn {
            name: written.join("."),
            position: parts.first().and_then(|p| Position::of(p.span.start)),
            suggestion: self.suggest(&flat.join("_")),
        }
    }

    fn suggest(&self, name: &str) -> Option<String> {
        cascade_pipeline::did_you_mean(name, self.schema.fields().iter().map(|f| f.name().as_str()))
    }
}

fn literal(value: &Value) -> Option<Literal> {
    match value {
        Value::Number(text, _) => Some(match text.parse::<i64>() {
            Ok(v) => Literal::Int(v),
            Err(_) => Literal::Float(text.parse().ok()?),
        }),
        Value::SingleQuotedString(text) => Some(Literal::Str(text.clone())),
        Value::Boolean(v) => Some(Literal::Bool(*v)),
        Value::Null => Some(Literal::Null),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use arrow::array::{Int16Array, ListArray};
    use arrow::datatypes::{Field, Float32Type};

    /// Five rows with floats (NaN, -0.0, null), integers, strings and booleans.
    fn batch() -> RecordBatch {
        let list = ListArray::from_iter_primitive::<Float32Type, _, _>(
            (0..5).map(|i| Some(vec![Some(i as f32)])),
        );
        RecordBatch::try_from_iter([
            (
                "hillas_intensity",
                Arc::new(Float64Array::from(vec![
                    Some(30.0),
                    Some(50.0),
                    Some(120.0),
                    Some(f64::NAN),
                    None,
                ])) as ArrayRef,
            ),
            (
                "hillas_width",
                Arc::new(Float64Array::from(vec![0.1, -0.0, 0.05, 0.2, 0.0])),
            ),
            (
                "hillas_length",
                Arc::new(Float64Array::from(vec![0.2, 0.4, 0.1, 0.4, 1.0])),
            ),
            (
                "morphology_n_pixels",
                Arc::new(Int64Array::from(vec![3, 4, 10, 20, 5])),
            ),
            ("tel_id", Arc::new(Int16Array::from(vec![1, 2, 3, 4, 5]))),
            (
                "tel_type",
                Arc::new(StringArray::from(vec!["LST", "MST", "LST", "SST", "MST"])),
            ),
            (
                "is_valid",
                Arc::new(BooleanArray::from(vec![true, false, true, true, false])),
            ),
            ("image", Arc::new(list)),
        ])
        .unwrap()
    }

    fn eval(text: &str) -> Vec<bool> {
        let batch = batch();
        let predicate = Expression::parse(text)
            .and_then(|e| e.bind(&batch.schema()))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let mask = predicate.evaluate(&batch).unwrap();
        assert_eq!(mask.null_count(), 0);
        mask.iter().map(|v| v.unwrap()).collect()
    }

    fn error(text: &str) -> ExprError {
        Expression::parse(text)
            .and_then(|e| e.bind(&batch().schema()))
            .expect_err(text)
    }

    #[test]
    fn comparisons_logic_and_precedence() {
        assert_eq!(
            eval("hillas_intensity > 50"),
            [false, false, true, false, false]
        );
        assert_eq!(
            eval("hillas_intensity >= 50"),
            [false, true, true, false, false]
        );
        assert_eq!(
            eval("morphology_n_pixels > 3"),
            [false, true, true, true, true]
        );
        assert_eq!(
            eval("morphology_n_pixels > 3 AND tel_id <= 3"),
            [false, true, true, false, false]
        );
        // AND binds tighter than OR.
        assert_eq!(
            eval("tel_id = 1 OR tel_id = 2 AND morphology_n_pixels > 10"),
            [true, false, false, false, false]
        );
        assert_eq!(
            eval("(tel_id = 1 OR tel_id = 2) and morphology_n_pixels > 3"),
            [false, true, false, false, false]
        );
        assert_eq!(eval("NOT tel_id <> 4"), [false, false, false, true, false]);
        assert_eq!(eval("tel_id != 4.0"), [true, true, true, false, true]);
        assert_eq!(eval("tel_type = 'LST'"), [true, false, true, false, false]);
        assert_eq!(eval("is_valid"), [true, false, true, true, false]);
        assert_eq!(eval("is_valid = FALSE"), [false, true, false, false, true]);
        assert_eq!(
            eval("hillas_intensity > -1e9"),
            [true, true, true, false, false]
        );
    }

    #[test]
    fn a_comparison_with_nan_is_false_except_not_equal_as_in_numpy() {
        // Row 3 is NaN: numpy gives False for <, <=, >, >=, == and True for !=.
        assert!(!eval("hillas_intensity > 50")[3]);
        assert!(!eval("hillas_intensity <= 50")[3]);
        assert!(!eval("hillas_intensity = hillas_intensity")[3]);
        assert!(eval("hillas_intensity != hillas_intensity")[3]);
        assert!(eval("NOT hillas_intensity > 50")[3]);
        assert_eq!(
            eval("isnan(hillas_intensity)"),
            [false, false, false, true, false]
        );
        assert_eq!(
            eval("isfinite(hillas_intensity)"),
            [true, true, true, false, false]
        );
        // -0.0 equals 0.0 and is not above it (Arrow's total order says otherwise).
        assert_eq!(eval("hillas_width = 0"), [false, true, false, false, true]);
        assert_eq!(eval("hillas_width > 0"), [true, false, true, true, false]);
    }

    #[test]
    fn null_is_three_valued_and_a_null_condition_drops_the_row() {
        // Row 4 is null: the comparison is null, so both it and its negation drop the row.
        assert!(!eval("hillas_intensity > 50")[4]);
        assert!(!eval("NOT hillas_intensity > 50")[4]);
        assert!(eval("hillas_intensity > 50 OR tel_id = 5")[4]);
        assert_eq!(
            eval("hillas_intensity IS NULL"),
            [false, false, false, false, true]
        );
        assert_eq!(
            eval("hillas_intensity IS NOT NULL"),
            [true, true, true, true, false]
        );
        assert_eq!(eval("tel_id = NULL"), [false; 5]);
        assert_eq!(eval("NULL"), [false; 5]);
    }

    #[test]
    fn arithmetic_is_in_f64() {
        assert_eq!(
            eval("hillas_width / hillas_length >= 0.5"),
            [true, false, true, true, false]
        );
        assert_eq!(eval("tel_id / 2 = 0.5"), [true, false, false, false, false]);
        assert_eq!(eval("-tel_id < -4"), [false, false, false, false, true]);
        assert_eq!(
            eval("abs(-hillas_width) * 10 + 1 > 1.5"),
            [true, false, false, true, false]
        );
    }

    #[test]
    fn filter_keeps_the_matching_rows() {
        let predicate = Expression::parse("morphology_n_pixels > 3 AND hillas_intensity > 40")
            .unwrap()
            .bind(&batch().schema())
            .unwrap();
        let kept = predicate.filter(&batch()).unwrap();
        assert_eq!(kept.num_rows(), 2);
        let tel_ids = kept
            .column_by_name("tel_id")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int16Type>();
        assert_eq!(tel_ids.values(), &[2, 3]);
    }

    #[test]
    fn unquoted_names_are_lower_cased() {
        assert_eq!(eval("TEL_ID = 2"), [false, true, false, false, false]);
        let schema = Schema::new(vec![Field::new("Energy", DataType::Float64, false)]);
        let bound = Expression::parse("\"Energy\" > 1").unwrap().bind(&schema);
        assert!(bound.is_ok());
        let unquoted = Expression::parse("Energy > 1").unwrap().bind(&schema);
        assert!(matches!(unquoted, Err(ExprError::UnknownColumn { .. })));
    }

    #[test]
    fn syntax_errors_give_the_position() {
        let e = error("hillas_intensity > > 3");
        assert!(
            matches!(
                e,
                ExprError::Syntax {
                    position: Some(Position {
                        line: 1,
                        column: 20
                    }),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("syntax error at character 20: Expected: an expression"),
            "{e}"
        );

        let e = error("hillas_intensity > 50 hillas_width > 0");
        assert_eq!(
            e.to_string(),
            "syntax error at character 23: unexpected `hillas_width` after the expression"
        );
        assert_eq!(
            error("(tel_id > 1").to_string(),
            "syntax error at character 12: Expected: ), found: the end"
        );
        assert_eq!(
            error("tel_id > 1 AND\n  tel_id <").to_string(),
            "syntax error at line 2, character 11: Expected: an expression, found: the end"
        );
        assert_eq!(
            error("tel_id = 'LST").to_string(),
            "syntax error at character 10: Unterminated string literal"
        );
        assert!(matches!(error(""), ExprError::Syntax { .. }));
    }

    #[test]
    fn unknown_columns_suggest_the_closest_input_column() {
        assert_eq!(
            error("tel_id > 0 AND hillas_intensty > 50").to_string(),
            "unknown column `hillas_intensty` at character 16; did you mean `hillas_intensity`?"
        );
        assert_eq!(
            error("hillas.intensity > 50").to_string(),
            "unknown column `hillas.intensity` at character 1; did you mean `hillas_intensity`?"
        );
        assert_eq!(
            error("parameters.morphology.n_pixels > 3").to_string(),
            "unknown column `parameters.morphology.n_pixels` at character 1; did you mean \
             `morphology_n_pixels`?"
        );
        assert_eq!(
            error("banana > 3").to_string(),
            "unknown column `banana` at character 1"
        );
    }

    #[test]
    fn type_errors_name_the_operands() {
        assert_eq!(
            error("tel_type > 3").to_string(),
            "cannot compare `tel_type` (string) with `3` (integer) at character 1"
        );
        assert_eq!(
            error("hillas_intensity + 1").to_string(),
            "`hillas_intensity + 1` is a float, not a condition (true or false) at character 1"
        );
        assert_eq!(
            error("tel_id = 1 AND tel_id").to_string(),
            "`tel_id` is an integer, not a condition (true or false) at character 16"
        );
        assert_eq!(
            error("isnan(tel_type)").to_string(),
            "`isnan` needs numbers, but `tel_type` is a string at character 7"
        );
        assert!(matches!(
            error("image > 0"),
            ExprError::UnsupportedColumn { ref name, .. } if name == "image"
        ));
        assert!(matches!(
            error("tel_type LIKE 'L%'"),
            ExprError::Unsupported { .. }
        ));
        assert!(matches!(
            error("sqrt(tel_id) > 1"),
            ExprError::Unsupported { .. }
        ));
        assert!(matches!(
            error("tel_id % 2 = 0"),
            ExprError::Unsupported { .. }
        ));
    }

    #[test]
    fn evaluating_on_a_batch_without_the_column_is_an_error() {
        let predicate = Expression::parse("tel_id > 1")
            .unwrap()
            .bind(&batch().schema())
            .unwrap();
        let other = RecordBatch::try_from_iter([(
            "event_id",
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
        )])
        .unwrap();
        assert!(matches!(
            predicate.evaluate(&other),
            Err(ExprError::UnknownColumn { .. })
        ));
    }
}
