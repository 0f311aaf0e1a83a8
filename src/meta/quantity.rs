//! Resource quantities (`resource.Quantity`): parsing, exact arithmetic and the canonical text kube-apiserver writes back.
//!
//! Follows kube-apiserver v1.32 (apimachinery v0.32 `pkg/api/resource`): the same accepted
//! syntax and error messages, rounding of sub-nano precision away from zero, the 2^63-1 cap on
//! binary-suffixed values, and canonicalisation that keeps the input's format family. The value is
//! held exactly as a signed 128-bit count of nano-units, so no floating point is ever involved.
//!
//! Deliberate departures, each where upstream's behaviour has no practical use or corrupts values:
//! - magnitudes of 2^127 nano-units (about 1.7e29) and more are kept as canonical text, as
//!   upstream writes them back, but their value saturates there: they compare as larger than
//!   anything smaller, and `+`/`-` saturate (upstream keeps arbitrary precision);
//! - decimal-exponent suffixes outside the 32-bit range are clamped (upstream wraps them, and can
//!   then spend unbounded time and memory);
//! - `milli_value`/`value` round negative values away from zero, as upstream does for values it
//!   holds as int64; for values it holds as `inf.Dec` it truncates and adds one instead;
//! - decimal SI values of 10^21 and more print as `1e21` rather than losing the exponent (`1`).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Add, Sub};
use std::str::FromStr;

const NANOS_PER_UNIT: i128 = 1_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;
/// Upstream caps binary-suffixed quantities at the largest int64 (`maxAllowed`), in nano-units.
const MAX_BINARY_NANOS: u128 = (i64::MAX as u128) * 1_000_000_000;

/// Why a quantity string was rejected; `Display` is upstream's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text is not a number followed by suffix characters (upstream `ErrFormatWrong`).
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format,
    /// The number cannot be represented (upstream `ErrNumeric`).
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is none of the known ones (upstream `ErrSuffix`).
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// The family of suffixes a quantity is written with; canonical output stays in the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `e3`, `E-2`: a power of ten written as an exponent.
    DecimalExponent,
    /// `Ki`, `Mi`, ... `Ei`: powers of 1024.
    BinarySI,
    /// `n`, `u`, `m`, none, `k`, `M`, `G`, `T`, `P`, `E`: powers of 1000.
    #[default]
    DecimalSI,
}

/// An exact quantity such as `500m`, `1Gi` or `129e6`.
///
/// Equality, ordering and hashing compare values only (upstream `Cmp`), so `1Gi == 1024Mi`.
#[derive(Debug, Clone, Default)]
pub struct Quantity {
    /// The value times 10^9; finer input precision is rounded away from zero at parse time.
    nanos: i128,
    format: Format,
    /// The input text when upstream's parser would have kept it as the object's string form
    /// and it differs from `canonical()` (e.g. `+1`, `1.500`, `1E3`); see `to_api_string`.
    original: Option<Box<str>>,
}

/// The parts upstream's scanner splits a quantity string into.
struct Scanned<'a> {
    negative: bool,
    /// Whether the number part holds any digit at all (leading zeros included).
    has_digit: bool,
    /// Integer digits without leading zeros (empty means zero).
    num: &'a str,
    /// Fraction digits as written.
    denom: &'a str,
    suffix: &'a str,
}

/// Upstream `parseQuantityString`: an optional sign, digits, an optional `.` with digits, then a
/// run of suffix letters, an optional sign and digits. It deliberately accepts oddities upstream
/// accepts (`.`, `+`, `-`, `Ki` all read as zero; `1.` is one).
fn scan(s: &str) -> Result<Scanned<'_>, QuantityError> {
    let bytes = s.as_bytes();
    let end = bytes.len();
    let at = |i: usize| bytes.get(i).copied();
    // Every cut below is next to an ASCII byte, so these slices never split a character.
    let part = |from: usize, to: usize| s.get(from..to).unwrap_or_default();
    let mut pos = 0;
    let mut negative = false;
    match at(0) {
        Some(b'-') => {
            negative = true;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    let mut scanned = Scanned {
        negative,
        has_digit: false,
        num: "",
        denom: "",
        suffix: "",
    };
    let digits_start = pos;
    while at(pos) == Some(b'0') {
        pos += 1;
    }
    let num_start = pos;
    while at(pos).is_some_and(|b| b.is_ascii_digit()) {
        pos += 1;
    }
    scanned.num = part(num_start, pos);
    scanned.has_digit = pos > digits_start;
    if pos == end {
        return Ok(scanned);
    }
    if at(pos) == Some(b'.') {
        pos += 1;
        let denom_start = pos;
        while at(pos).is_some_and(|b| b.is_ascii_digit()) {
            pos += 1;
        }
        scanned.denom = part(denom_start, pos);
        scanned.has_digit |= pos > denom_start;
        if pos == end {
            return Ok(scanned);
        }
    }
    let suffix_start = pos;
    while at(pos).is_some_and(|b| b"eEinumkKMGTP".contains(&b)) {
        pos += 1;
    }
    if matches!(at(pos), Some(b'-' | b'+')) {
        pos += 1;
    }
    while at(pos).is_some_and(|b| b.is_ascii_digit()) {
        pos += 1;
    }
    if pos != end {
        return Err(QuantityError::Format);
    }
    scanned.suffix = part(suffix_start, end);
    Ok(scanned)
}

/// Upstream's suffix table: base-10 or base-2 exponent and the format it implies. A decimal
/// exponent outside 32 bits is clamped (upstream truncates it to int32, changing its meaning).
fn interpret_suffix(suffix: &str) -> Result<(u32, i64, Format), QuantityError> {
    let decimal = |e: i64| Ok((10, e, Format::DecimalSI));
    let binary = |e: i64| Ok((2, e, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let exponent = suffix
                .strip_prefix(['e', 'E'])
                .filter(|rest| !rest.is_empty())
                .ok_or(QuantityError::Suffix)?
                .parse::<i64>()
                .map_err(|_| QuantityError::Suffix)?;
            let clamped = exponent.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
            Ok((10, clamped, Format::DecimalExponent))
        }
    }
}

/// Multiplies a big-endian decimal digit string by `factor` (at most 2^60) in place.
fn multiply_digits(digits: &mut Vec<u8>, factor: u64) {
    let mut carry: u128 = 0;
    for d in digits.iter_mut().rev() {
        let v = u128::from(*d) * u128::from(factor) + carry;
        *d = (v % 10) as u8;
        carry = v / 10;
    }
    let mut head = Vec::new();
    while carry > 0 {
        head.push((carry % 10) as u8);
        carry /= 10;
    }
    if !head.is_empty() {
        head.reverse();
        head.append(digits);
        *digits = head;
    }
}

/// Folds decimal digits into a u128, or None on overflow.
fn digits_to_u128(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |acc, d| {
        acc.checked_mul(10)?.checked_add(u128::from(*d))
    })
}

/// The magnitude `digits × 2^binary_exp × 10^pow10` of a non-zero digit string, rounded up to
/// an integer when `pow10` is negative and any dropped digit is non-zero; None when it does not
/// fit in a u128. Work and memory are linear in the number of digits, whatever the exponent.
fn scaled_magnitude(mut digits: Vec<u8>, binary_exp: u32, pow10: i64) -> Option<u128> {
    let first_nonzero = digits.iter().position(|d| *d != 0).unwrap_or(digits.len());
    digits.drain(..first_nonzero);
    if binary_exp > 0 {
        multiply_digits(&mut digits, 1u64 << binary_exp);
    }
    if pow10 >= 0 {
        if digits.len() as i64 + pow10 > 40 {
            return None;
        }
        let exp = u32::try_from(pow10).ok()?;
        return digits_to_u128(&digits)?.checked_mul(10u128.checked_pow(exp)?);
    }
    let dropped = usize::try_from(pow10.unsigned_abs()).unwrap_or(usize::MAX);
    if dropped >= digits.len() {
        // Everything is below one nano-unit and the value is non-zero: round up to one.
        return Some(1);
    }
    let (kept, rest) = digits.split_at(digits.len() - dropped);
    let kept = digits_to_u128(kept)?;
    if rest.iter().any(|d| *d != 0) {
        kept.checked_add(1)
    } else {
        Some(kept)
    }
}

/// A decimal quantity too large for 128 bits. Upstream holds it in an arbitrary-precision
/// decimal and writes it back in canonical form, so it is kept as text: the digits with their
/// trailing zeros moved into the exponent, the exponent made a multiple of three, and the
/// suffix of the input's family (`99999999999999999999999999E` stays as written). The value
/// itself saturates at the largest representable magnitude, so comparisons and sums treat it
/// as larger than any ordinary quantity.
fn huge_decimal(
    scanned: &Scanned<'_>,
    exponent: i64,
    format: Format,
) -> Result<Quantity, QuantityError> {
    let mut digits: Vec<u8> = scanned
        .num
        .bytes()
        .chain(scanned.denom.bytes())
        .skip_while(|b| *b == b'0')
        .collect();
    let fraction_len = i64::try_from(scanned.denom.len()).map_err(|_| QuantityError::Numeric)?;
    let mut exp = exponent.saturating_sub(fraction_len);
    if exp < -9 {
        // Upstream rounds to whole nano-units, away from zero.
        let cut = usize::try_from(-9 - exp).map_err(|_| QuantityError::Numeric)?;
        let keep = digits.len().saturating_sub(cut);
        let round_up = digits[keep..].iter().any(|d| *d != b'0');
        digits.truncate(keep);
        if round_up {
            increment_decimal(&mut digits);
        }
        exp = -9;
    }
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
        exp = exp.saturating_add(1);
    }
    while exp.rem_euclid(3) != 0 {
        digits.push(b'0');
        exp -= 1;
    }
    let number = String::from_utf8(digits).map_err(|_| QuantityError::Numeric)?;
    let sign = if scanned.negative { "-" } else { "" };
    let suffix = decimal_suffix(exp, format != Format::DecimalExponent);
    Ok(Quantity {
        nanos: if scanned.negative {
            -i128::MAX
        } else {
            i128::MAX
        },
        format,
        original: Some(format!("{sign}{number}{suffix}").into()),
    })
}

/// Adds one to a big-endian string of ASCII digits.
fn increment_decimal(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

/// The suffix for a power of ten that is a multiple of three: the SI letter in the decimal SI
/// family where one exists, otherwise an exponent.
fn decimal_suffix(exponent: i64, decimal_si: bool) -> String {
    match exponent {
        -9 if decimal_si => "n".to_owned(),
        -6 if decimal_si => "u".to_owned(),
        -3 if decimal_si => "m".to_owned(),
        0 => String::new(),
        3 if decimal_si => "k".to_owned(),
        6 if decimal_si => "M".to_owned(),
        9 if decimal_si => "G".to_owned(),
        12 if decimal_si => "T".to_owned(),
        15 if decimal_si => "P".to_owned(),
        18 if decimal_si => "E".to_owned(),
        e => format!("e{e}"),
    }
}

/// Whether upstream's parser takes its int64 fast path, which holds the value without
/// rounding: at most 18 digits at a scale of at least nano, or a binary mantissa whose product
/// with the suffix fits comfortably in an int64. Inputs outside it go through an arbitrary
/// precision decimal, which rejects a number part without any digit (`Pi`, `e-12`, `-.e-10`).
fn upstream_fast_path(scanned: &Scanned<'_>, exponent: i64, format: Format) -> bool {
    let digits = (scanned.num.len().max(1) + scanned.denom.len()) as i64;
    match format {
        Format::DecimalSI | Format::DecimalExponent => {
            digits <= 18 && exponent - scanned.denom.len() as i64 >= -9
        }
        Format::BinarySI => {
            if !scanned.denom.is_empty() || digits + exponent * 3 / 10 > 14 {
                return false;
            }
            let value = if scanned.num.is_empty() {
                Ok(0)
            } else {
                scanned.num.parse::<i64>()
            };
            let shift = u32::try_from(exponent).unwrap_or(u32::MAX);
            value.is_ok_and(|v| {
                1i64.checked_shl(shift)
                    .and_then(|m| v.checked_mul(m))
                    .is_some()
            })
        }
    }
}

/// Whether upstream's fast path would return the input text itself as the quantity's string:
/// it does when it judges the text canonical, i.e. a decimal scale that is a multiple of three
/// with no trailing `000` and no leading zero in the digits, or a binary mantissa not divisible
/// by 8.
fn upstream_keeps_input(scanned: &Scanned<'_>, exponent: i64, format: Format) -> bool {
    if !upstream_fast_path(scanned, exponent, format) {
        return false;
    }
    let num = if scanned.num.is_empty() {
        "0"
    } else {
        scanned.num
    };
    match format {
        Format::DecimalSI | Format::DecimalExponent => {
            let scale = exponent - scanned.denom.len() as i64;
            let shifted = format!("{num}{}", scanned.denom);
            scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')
        }
        Format::BinarySI => num.parse::<i64>().is_ok_and(|v| v & 0x07 != 0),
    }
}

/// `n` divided by `d` (positive), rounded away from zero as upstream's `ScaledValue` does for
/// values it holds exactly.
fn div_away_from_zero(n: i128, d: i128) -> i128 {
    let q = n / d;
    match n % d {
        0 => q,
        _ if n > 0 => q + 1,
        _ => q - 1,
    }
}

impl Quantity {
    /// Parses Kubernetes quantity syntax `<signedNumber><suffix>` (upstream `ParseQuantity`).
    /// Leading or trailing whitespace is an error here; JSON decoding trims it first upstream.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::Format);
        }
        let scanned = scan(s)?;
        let (base, exponent, mut format) = interpret_suffix(scanned.suffix)?;
        if !scanned.has_digit && !upstream_fast_path(&scanned, exponent, format) {
            return Err(QuantityError::Numeric);
        }

        let digits: Vec<u8> = scanned
            .num
            .bytes()
            .chain(scanned.denom.bytes())
            .map(|b| b - b'0')
            .collect();
        let fraction_len = i64::try_from(scanned.denom.len()).unwrap_or(i64::MAX);
        let (binary_exp, decimal_exp) = if base == 2 {
            (u32::try_from(exponent).unwrap_or(0), 0)
        } else {
            (0, exponent)
        };
        let pow10 = decimal_exp.saturating_sub(fraction_len).saturating_add(9);
        let magnitude = if digits.iter().all(|d| *d == 0) {
            0
        } else {
            match scaled_magnitude(digits, binary_exp, pow10) {
                Some(m) if format != Format::BinarySI || m <= MAX_BINARY_NANOS => m,
                // A binary quantity too large for int64 is silently capped, as upstream does.
                _ if format == Format::BinarySI => MAX_BINARY_NANOS,
                _ => return huge_decimal(&scanned, exponent, format),
            }
        };
        let Ok(magnitude) = i128::try_from(magnitude) else {
            return huge_decimal(&scanned, exponent, format);
        };
        if format == Format::BinarySI && magnitude > 0 && magnitude < NANOS_PER_UNIT {
            // Upstream switches a binary quantity below one to decimal to avoid rounding it.
            format = Format::DecimalSI;
        }
        let nanos = if scanned.negative {
            -magnitude
        } else {
            magnitude
        };
        let mut quantity = Quantity {
            nanos,
            format,
            original: None,
        };
        if upstream_keeps_input(&scanned, exponent, format) && quantity.canonical() != s {
            quantity.original = Some(s.into());
        }
        Ok(quantity)
    }

    /// A quantity of `value` whole units in `format` (upstream `NewQuantity`); saturates
    /// beyond about ±1.7e29.
    pub fn new(value: i128, format: Format) -> Quantity {
        Quantity {
            nanos: value.saturating_mul(NANOS_PER_UNIT),
            format,
            original: None,
        }
    }

    /// A quantity of `value` thousandths in `format` (upstream `NewMilliQuantity`).
    pub fn new_milli(value: i128, format: Format) -> Quantity {
        Quantity {
            nanos: value.saturating_mul(NANOS_PER_MILLI),
            format,
            original: None,
        }
    }

    /// The suffix family the quantity was written with.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The value in thousandths, rounded away from zero (upstream `MilliValue`; used for CPU).
    pub fn milli_value(&self) -> i128 {
        div_away_from_zero(self.nanos, NANOS_PER_MILLI)
    }

    /// The value in whole units, rounded away from zero (upstream `Value`; used for memory,
    /// storage and counts). `100m` gives 1.
    pub fn value(&self) -> i128 {
        div_away_from_zero(self.nanos, NANOS_PER_UNIT)
    }

    /// The value in nano-units: the exact internal representation.
    pub fn nano_value(&self) -> i128 {
        self.nanos
    }

    /// True when the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// True when the value is zero, whatever its format.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Upstream's canonical form (`CanonicalizeBytes`): no fractional digits, the largest suffix
    /// that loses nothing, and the input's format family. Binary quantities below 1024 or with a
    /// fraction are written in decimal SI. Two departures keep values intact where v1.32 would
    /// corrupt them: decimal SI beyond `E` falls back to an exponent (`1e21`, as later upstream
    /// releases do), and binary values of 1024^7 and more keep the `Ei` suffix with a larger number.
    pub fn canonical(&self) -> String {
        if self.nanos.unsigned_abs() == i128::MAX.unsigned_abs() {
            // A value beyond 128 bits keeps the canonical text it was parsed from.
            if let Some(text) = &self.original {
                return text.to_string();
            }
        }
        if self.nanos == 0 {
            return "0".to_owned();
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let magnitude = self.nanos.unsigned_abs();
        let units = NANOS_PER_UNIT.unsigned_abs();
        let binary =
            self.format == Format::BinarySI && magnitude >= 1024 * units && magnitude % units == 0;
        if binary {
            const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
            let mut number = magnitude / units;
            let mut power = 0;
            while power < SUFFIXES.len() - 1 && number % 1024 == 0 {
                number /= 1024;
                power += 1;
            }
            return format!("{sign}{number}{}", SUFFIXES[power]);
        }
        let mut mantissa = magnitude;
        let mut exponent: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        let padding = exponent.rem_euclid(3);
        exponent -= padding;
        let zeros = "00"
            .get(..padding.unsigned_abs() as usize)
            .unwrap_or_default();
        let suffix = decimal_suffix(i64::from(exponent), self.format != Format::DecimalExponent);
        format!("{sign}{mantissa}{zeros}{suffix}")
    }

    /// The text kube-apiserver v1.32 writes back for this quantity when it echoes an object
    /// (upstream `String`/`MarshalJSON`): the input verbatim when upstream's parser judged it
    /// canonical and kept it (which lets `+1`, `01`, `1.500` or `1E3` through unchanged),
    /// otherwise `canonical()`. Arithmetic results always use `canonical()`.
    pub fn to_api_string(&self) -> String {
        match &self.original {
            Some(original) => original.to_string(),
            None => self.canonical(),
        }
    }

    /// Upstream `Add`/`Sub`: a zero left operand takes the right operand's format.
    fn combine(&self, nanos: i128, rhs: &Quantity) -> Quantity {
        Quantity {
            nanos,
            format: if self.nanos == 0 {
                rhs.format
            } else {
                self.format
            },
            original: None,
        }
    }
}

/// `kubectl describe node` text for a CPU amount in millicores: `100m`, `2`, `1500m`, `0`.
pub fn format_cpu_milli(m: i128) -> String {
    Quantity::new_milli(m, Format::DecimalSI).canonical()
}

/// `kubectl describe node` text for a byte count held as a binary quantity: `128Mi`, `1Gi`,
/// `1500`; amounts below 1024 print in decimal SI as upstream does (`1k` for 1000).
pub fn format_bytes(b: i128) -> String {
    Quantity::new(b, Format::BinarySI).canonical()
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    /// The canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl Add for Quantity {
    type Output = Quantity;
    /// Exact sum, saturating at ±2^127 nano-units.
    fn add(self, rhs: Quantity) -> Quantity {
        self.combine(self.nanos.saturating_add(rhs.nanos), &rhs)
    }
}

impl Sub for Quantity {
    type Output = Quantity;
    /// Exact difference, saturating at ±2^127 nano-units.
    fn sub(self, rhs: Quantity) -> Quantity {
        self.combine(self.nanos.saturating_sub(rhs.nanos), &rhs)
    }
}

impl Add<&Quantity> for &Quantity {
    type Output = Quantity;
    fn add(self, rhs: &Quantity) -> Quantity {
        self.combine(self.nanos.saturating_add(rhs.nanos), rhs)
    }
}

impl Sub<&Quantity> for &Quantity {
    type Output = Quantity;
    fn sub(self, rhs: &Quantity) -> Quantity {
        self.combine(self.nanos.saturating_sub(rhs.nanos), rhs)
    }
}

impl std::iter::Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Quantity {
        iter.fold(Quantity::default(), |acc, q| acc + q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        match Quantity::parse(s) {
            Ok(q) => q,
            Err(e) => panic!("{s:?} should parse, got {e}"),
        }
    }

    #[test]
    fn parse_then_canonical_keeps_the_format_family_and_the_largest_exact_suffix() {
        let cases = [
            ("0", "0"),
            ("0m", "0"),
            ("0Ki", "0"),
            ("-0", "0"),
            ("100m", "100m"),
            ("0.1", "100m"),
            ("1.5", "1500m"),
            ("1", "1"),
            ("-1", "-1"),
            ("1000", "1k"),
            ("1k", "1k"),
            ("1000M", "1G"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("300Mi", "300Mi"),
            ("1024", "1024"),
            ("1025", "1025"),
            ("1e3", "1e3"),
            ("1E6", "1e6"),
            ("1e1", "10"),
            ("129e6", "129e6"),
            ("129M", "129M"),
            ("128974848", "128974848"),
            ("1.2e3", "1200"),
            ("12e-1", "1200e-3"),
            ("1e-9", "1e-9"),
            ("0.5e-9", "1e-9"),
            ("5n", "5n"),
            ("1080n", "1080n"),
            ("4u", "4u"),
            ("100.035k", "100035"),
            ("10.035M", "10035k"),
            ("7.123456M", "7123456"),
            ("1.01E", "1010P"),
            ("12E", "12E"),
            ("-100m", "-100m"),
            ("-1.5Gi", "-1536Mi"),
            (".001", "1m"),
            (".0001k", "100m"),
            ("1.", "1"),
            ("1.G", "1G"),
            ("0.5Mi", "512Ki"),
            ("0.5Ki", "512"),
            ("1.1Ki", "1126400m"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("3.001n", "4n"),
            ("0.9n", "1n"),
            ("0.00000012345", "124n"),
            ("8Ei", "9223372036854775807"),
            ("9223372036854775807Ki", "9223372036854775807"),
            ("-9Ei", "-9223372036854775807"),
            ("1000E", "1e21"),
            (".", "0"),
            ("+", "0"),
            ("-", "0"),
            ("Ki", "0"),
            ("Ti", "0"),
            ("e-9", "0"),
            ("0e-12", "0"),
            ("1e-999999999", "1e-9"),
            ("00000000000000000000000000000000000000000000000001", "1"),
            (
                "1.000000000000000000000000000000000000000000000001",
                "1000000001n",
            ),
        ];
        for (input, canonical) in cases {
            assert_eq!(q(input).canonical(), canonical, "{input}");
            assert_eq!(q(input).to_string(), canonical, "{input}");
            assert_eq!(
                q(canonical),
                q(input),
                "{canonical} re-parses to the value of {input}"
            );
        }
    }

    #[test]
    fn parse_remembers_the_suffix_family() {
        let cases = [
            ("1", Format::DecimalSI),
            ("1k", Format::DecimalSI),
            ("1Ki", Format::BinarySI),
            ("1e3", Format::DecimalExponent),
            ("1E-3", Format::DecimalExponent),
            ("0.000000000001Ki", Format::DecimalSI),
            ("0Ki", Format::BinarySI),
        ];
        for (input, format) in cases {
            assert_eq!(q(input).format(), format, "{input}");
        }
    }

    #[test]
    fn huge_quantities_keep_upstreams_canonical_text_or_its_binary_cap() {
        let cases = [
            // Binary suffixes are capped at 2^63-1 by upstream's ParseQuantity (maxAllowed).
            ("99999999999999999999999999Ei", "9223372036854775807"),
            ("16Ei", "9223372036854775807"),
            // Decimal values are arbitrary precision upstream and written back canonically.
            ("99999999999999999999999999E", "99999999999999999999999999E"),
            (
                "-99999999999999999999999999E",
                "-99999999999999999999999999E",
            ),
            (
                "99999999999999999999999999000E",
                "99999999999999999999999999e21",
            ),
            ("1e30", "1e30"),
            ("1e400", "10e399"),
            ("1e999999999", "1e999999999"),
            ("100000000000000000000000000000000000000000000", "100e42"),
            (
                "170141183460469231731687303715884105728.0000000001",
                "170141183460469231731687303715884105728000000001n",
            ),
            (
                "170141183460469231731687303715884105728.00000000001",
                "170141183460469231731687303715884105728000000001n",
            ),
        ];
        for (input, want) in cases {
            let parsed = q(input);
            assert_eq!(parsed.to_api_string(), want, "{input}");
            assert_eq!(parsed.canonical(), want, "{input}");
            assert_eq!(q(want), parsed, "{input}");
        }
        assert!(q("1e30") > q("1E"));
        assert!(q("-1e30").is_negative());
    }

    #[test]
    fn parse_rejects_malformed_input_with_upstreams_messages() {
        let format = QuantityError::Format;
        let suffix = QuantityError::Suffix;
        let numeric = QuantityError::Numeric;
        let cases = [
            ("", format),
            (" 1", format),
            ("1 ", format),
            ("1.5.5Gi", format),
            ("1.1.M", format),
            ("1+1.0M", format),
            ("0.1am", format),
            ("aoeu", format),
            ("1Gb", format),
            ("1e3.5", format),
            ("١", format),
            ("0.1mi", suffix),
            (".5i", suffix),
            ("1i", suffix),
            ("-3.01i", suffix),
            ("-3.01e-", suffix),
            ("1e", suffix),
            ("1GG", suffix),
            ("1ee3", suffix),
            ("1e99999999999999999999", suffix),
            ("Pi", numeric),
            ("Ei", numeric),
            ("e-12", numeric),
            ("-.e-10", numeric),
        ];
        for (input, expected) in cases {
            assert_eq!(Quantity::parse(input), Err(expected), "{input:?}");
        }
        assert_eq!(
            QuantityError::Format.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            QuantityError::Suffix.to_string(),
            "unable to parse quantity's suffix"
        );
        assert_eq!(
            QuantityError::Numeric.to_string(),
            "unable to parse numeric part of quantity"
        );
    }

    #[test]
    fn milli_value_and_value_round_away_from_zero() {
        let cases = [
            ("1n", 1, 1),
            ("1m", 1, 1),
            ("100m", 100, 1),
            ("1", 1000, 1),
            ("1.5", 1500, 2),
            ("2", 2000, 2),
            ("1Ki", 1_024_000, 1024),
            ("1Gi", 1_073_741_824_000, 1_073_741_824),
            ("-1n", -1, -1),
            ("-1.5", -1500, -2),
            ("0", 0, 0),
            (
                "8Ei",
                9_223_372_036_854_775_807_000,
                9_223_372_036_854_775_807,
            ),
        ];
        for (input, milli, value) in cases {
            assert_eq!(q(input).milli_value(), milli, "{input}");
            assert_eq!(q(input).value(), value, "{input}");
        }
    }

    #[test]
    fn quantities_compare_by_value_across_formats() {
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("0.1"), q("100m"));
        assert!(q("100m") > q("50m"));
        assert!(q("10000T") > q("100Gi"));
        assert!(q("-1") < q("0"));
        assert!(q("1n") > q("0"));
        assert!(q("999m") < q("1"));
        let mut sorted = [q("1Gi"), q("1"), q("-5"), q("500m"), q("1M")];
        sorted.sort();
        let texts: Vec<String> = sorted.iter().map(Quantity::canonical).collect();
        assert_eq!(texts, ["-5", "500m", "1", "1M", "1Gi"]);
    }

    #[test]
    fn addition_and_subtraction_are_exact_and_keep_the_left_format() {
        let cases = [
            ("100m", "200m", "300m", "-100m"),
            ("1", "500m", "1500m", "500m"),
            ("1Gi", "1Gi", "2Gi", "0"),
            ("1Gi", "512Mi", "1536Mi", "512Mi"),
            ("0", "1Gi", "1Gi", "-1Gi"),
            ("1k", "1Ki", "2024", "-24"),
            ("1e3", "1", "1001", "999"),
            ("8Ei", "8Ei", "18446744073709551614", "0"),
        ];
        for (a, b, sum, difference) in cases {
            assert_eq!((q(a) + q(b)).canonical(), sum, "{a} + {b}");
            assert_eq!((q(a) - q(b)).canonical(), difference, "{a} - {b}");
            assert_eq!((&q(a) + &q(b)).canonical(), sum, "&{a} + &{b}");
            assert_eq!((&q(a) - &q(b)).canonical(), difference, "&{a} - &{b}");
        }
        let total: Quantity = ["100m", "250m", "1"].iter().map(|s| q(s)).sum();
        assert_eq!(total.canonical(), "1350m");
        let huge = Quantity::new(i128::MAX, Format::DecimalSI);
        assert_eq!((huge.clone() + huge).nano_value(), i128::MAX);
    }

    #[test]
    fn negative_quantities_report_it() {
        assert!(q("-1").is_negative());
        assert!(q("-1n").is_negative());
        assert!(!q("-0").is_negative());
        assert!(!q("1").is_negative());
        assert!(q("-0").is_zero());
    }

    #[test]
    fn api_string_repeats_input_upstream_keeps_and_canonicalises_the_rest() {
        let cases = [
            ("100m", "100m"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("0.1", "100m"),
            ("1.5", "1500m"),
            ("1000", "1k"),
            ("+1", "+1"),
            ("01", "01"),
            ("+1Ki", "+1Ki"),
            ("1.500", "1.500"),
            ("1.50", "1500m"),
            ("1.000", "1"),
            ("1E3", "1E3"),
            ("1e+3", "1e+3"),
            ("1e1", "10"),
            ("8Ki", "8Ki"),
            ("9Ki", "9Ki"),
        ];
        for (input, echoed) in cases {
            assert_eq!(q(input).to_api_string(), echoed, "{input}");
        }
        assert_eq!((q("+1") + q("0")).to_api_string(), "1");
    }

    #[test]
    fn describe_node_formats_cpu_and_memory() {
        let cpu = [
            (0, "0"),
            (100, "100m"),
            (1500, "1500m"),
            (2000, "2"),
            (250, "250m"),
        ];
        for (milli, text) in cpu {
            assert_eq!(format_cpu_milli(milli), text, "{milli}m");
        }
        let memory = [
            (0, "0"),
            (128 * 1024 * 1024, "128Mi"),
            (1024 * 1024 * 1024, "1Gi"),
            (1536 * 1024 * 1024, "1536Mi"),
            (16_331_412 * 1024, "16331412Ki"),
            (1500, "1500"),
            (1000, "1k"),
            (512, "512"),
        ];
        for (bytes, text) in memory {
            assert_eq!(format_bytes(bytes), text, "{bytes} bytes");
        }
    }

    #[test]
    fn canonical_text_reparses_to_the_same_value_for_generated_quantities() {
        let suffixes = [
            "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
            "e3", "e-2", "E7", "e0",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let whole = state % 100_000;
            let fraction = (state >> 20) % 1000;
            let suffix = suffixes[(state >> 40) as usize % suffixes.len()];
            let sign = if state >> 63 == 1 { "-" } else { "" };
            let text = format!("{sign}{whole}.{fraction:03}{suffix}");
            let parsed = q(&text);
            let canonical = parsed.canonical();
            assert_eq!(q(&canonical), parsed, "{text} -> {canonical}");
            assert_eq!(
                q(&canonical).canonical(),
                canonical,
                "{text} -> {canonical}"
            );
            assert_eq!(q(&parsed.to_api_string()), parsed, "{text}");
        }
    }

    #[test]
    fn parsing_arbitrary_text_never_panics() {
        let alphabet: Vec<char> = "0123456789.+-eEinumkKMGTPx é".chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..50_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = (state >> 58) as usize;
            let mut x = state;
            let text: String = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    alphabet[(x >> 33) as usize % alphabet.len()]
                })
                .collect();
            if let Ok(parsed) = Quantity::parse(&text) {
                let _ = parsed.milli_value();
                assert_eq!(q(&parsed.canonical()), parsed, "{text:?}");
            }
        }
        let long_digits = "9".repeat(100_000);
        assert_eq!(q(&long_digits).to_api_string(), long_digits);
        assert_eq!(q(&format!("0.{long_digits}")).canonical(), "1");
        assert_eq!(
            q(&format!("{long_digits}Ei")).canonical(),
            "9223372036854775807"
        );
        assert_eq!(q("1e-2147483648").canonical(), "1e-9");
        assert_eq!(q("0e2147483647").canonical(), "0");
    }

    /// The table the pod registry's former private parser was tested with, now run against the
    /// one parser: the value in milli-units (`MilliValue`), or `None` when the text is rejected.
    #[test]
    fn milli_value_of_suffixes_signs_and_garbage() {
        let milli = |s: &str| Quantity::parse(s).ok().map(|q| q.milli_value());
        let cases: [(&str, Option<i128>); 20] = [
            ("1", Some(1000)),
            ("100m", Some(100)),
            ("0.5", Some(500)),
            (".5", Some(500)),
            ("1.5Gi", Some(1_610_612_736_000)),
            ("1Ki", Some(1_024_000)),
            ("1k", Some(1_000_000)),
            ("1e3", Some(1_000_000)),
            ("1E", Some(1_000_000_000_000_000_000_000)),
            ("-1", Some(-1000)),
            ("+2", Some(2000)),
            ("1n", Some(1)),
            ("0.0001", Some(1)),
            ("0", Some(0)),
            ("1K", None),
            ("", None),
            ("1e", None),
            ("abc", None),
            ("1 Ki", None),
            ("1.2.3", None),
        ];
        for (input, want) in cases {
            assert_eq!(milli(input), want, "input {input:?}");
        }
        // Absurd values saturate instead of panicking.
        assert!(milli("1e400").is_some_and(|v| v > 0));
        assert!(milli(&format!("{}Ei", "9".repeat(60))).is_some());
        assert_eq!(milli("1e-400"), Some(1));
        assert!(milli(&format!("1.{}1Ei", "0".repeat(36))).is_some_and(|v| v > 0));
        assert!(milli(&format!("{}.{}1Ei", "9".repeat(30), "0".repeat(30))).is_some());
        assert_eq!(milli(&format!("0.{}1", "0".repeat(80))), Some(1));
    }
}
