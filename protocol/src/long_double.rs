//! Numbers as Redis 7.0 reads a blocking timeout: `string2ld`, which is glibc's `strtold` into the
//! x86-64 `long double` (the x87 80-bit format, a 64-bit mantissa), then `(long long) ceill(x * 1000.0)`.
//!
//! An `f64` is not enough to give the same answers: `-0.001` seconds is accepted by Redis (its product
//! with 1000 lands just above -1, so the ceiling is 0) while `f64` arithmetic makes it exactly -1,
//! "negative"; `1e1000` is a finite `long double` (so "negative" after the conversion overflows) but
//! not a finite `f64`. So the value is rounded to 64 mantissa bits exactly, with a small big integer.

/// A value read by `strtold`, rounded to the 80-bit format's 64-bit mantissa.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongDouble {
    /// `mantissa × 2^exponent`; a zero mantissa is zero.
    Finite { negative: bool, mantissa: u64, exponent: i32 },
    Infinite { negative: bool },
}

/// `MAX_LONG_DOUBLE_CHARS`: Redis refuses longer text outright.
const MAX_CHARS: usize = 5 * 1024;
/// The largest finite value is just under 2^16384.
const MAX_EXP2: i64 = 16384;
/// Half the smallest subnormal, 2^-16446, and everything below it, rounds to zero: an underflow.
const ZERO_EXP2: i64 = -16446;

/// Parses `bytes` as Redis's `string2ld` does: `None` for anything it refuses (empty or too long,
/// leading space, trailing text, NaN, a value beyond the range, a non-zero value that rounds to zero).
/// Accepts what `strtold` accepts: a sign, decimals with an exponent, hexadecimal with a binary
/// exponent, `inf` and `infinity`.
pub fn parse(bytes: &[u8]) -> Option<LongDouble> {
    if bytes.is_empty() || bytes.len() >= MAX_CHARS || matches!(bytes[0], b' ' | b'\t'..=b'\r') {
        return None;
    }
    let (negative, body) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(LongDouble::Infinite { negative });
    }
    let hex = body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' && {
        let rest = &body[2..];
        rest[0].is_ascii_hexdigit() || (rest[0] == b'.' && rest.get(1).is_some_and(u8::is_ascii_hexdigit))
    };
    let (digits, radix_exp, exp_marker) = if hex { (&body[2..], 4, b'p') } else { (body, 1, b'e') };
    let radix: u32 = if hex { 16 } else { 10 };
    // Mantissa digits, an optional point, more digits; then the exponent (of 10, or of 2 for hex).
    let mut value = Big::default();
    let (mut seen, mut significant, mut scale, mut i) = (false, 0i64, 0i64, 0);
    let mut point = false;
    while i < digits.len() {
        let c = digits[i];
        if c == b'.' && !point {
            point = true;
        } else if let Some(d) = (c as char).to_digit(radix) {
            seen = true;
            if significant > 0 || d != 0 {
                value.mul_add(radix, d);
                significant += 1;
            }
            if point {
                scale -= 1;
            }
        } else {
            break;
        }
        i += 1;
    }
    if !seen {
        return None;
    }
    let mut exp = 0i64;
    if i < digits.len() && (digits[i] | 0x20) == exp_marker {
        let mut j = i + 1;
        let exp_negative = digits.get(j) == Some(&b'-');
        if matches!(digits.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        if digits.get(j).is_some_and(u8::is_ascii_digit) {
            while let Some(d) = digits.get(j).filter(|d| d.is_ascii_digit()) {
                exp = (exp * 10 + i64::from(d - b'0')).min(1 << 40);
                j += 1;
            }
            if exp_negative {
                exp = -exp;
            }
            i = j;
        }
    }
    if i != digits.len() {
        return None;
    }
    if value.is_zero() {
        return Some(LongDouble::Finite { negative, mantissa: 0, exponent: 0 });
    }
    let (mantissa, exponent) = if hex {
        let exp2 = exp + scale * radix_exp;
        let lead = value.bits() as i64 - 1 + exp2;
        if !(ZERO_EXP2..MAX_EXP2).contains(&lead) {
            return None;
        }
        let (n, q) = if exp2 >= 0 { (value.shl(exp2 as usize), Big::from(1)) } else { (value, Big::from(1).shl(-exp2 as usize)) };
        round(&n, &q)?
    } else {
        let exp10 = exp + scale;
        // value < 10^(lead + 1): a lead of 4933 is past the largest (1.19e4932), one of -4952 below
        // half the smallest (1.8e-4951).
        let lead = significant - 1 + exp10;
        if !(-4951..=4932).contains(&lead) {
            return None;
        }
        let (n, q) = if exp10 >= 0 { (value.times_pow10(exp10 as usize), Big::from(1)) } else { (value, Big::from(1).times_pow10(-exp10 as usize)) };
        round(&n, &q)?
    };
    Some(LongDouble::Finite { negative, mantissa, exponent })
}

impl LongDouble {
    /// `(long long) ceill(x * 1000.0)` as Redis 7.0 turns a timeout in seconds into milliseconds, the
    /// product rounded to 64 mantissa bits; a result outside `i64` (an infinity too) converts to
    /// `i64::MIN`, as x86-64 does.
    pub fn millis_ceil(self) -> i64 {
        let (negative, mantissa, exponent) = match self {
            LongDouble::Infinite { .. } => return i64::MIN,
            LongDouble::Finite { negative, mantissa, exponent } => (negative, mantissa, exponent),
        };
        let product = u128::from(mantissa) * 1000;
        let drop = (128 - product.leading_zeros()).saturating_sub(64);
        let (mut m, mut e) = (product >> drop, i64::from(exponent) + i64::from(drop));
        if drop > 0 {
            let rest = product & ((1 << drop) - 1);
            let half = 1u128 << (drop - 1);
            if rest > half || (rest == half && m & 1 == 1) {
                m += 1;
            }
        }
        if m >> 64 != 0 {
            m >>= 1;
            e += 1;
        }
        let (whole, fraction) = if e >= 0 {
            if e + i64::from(128 - m.leading_zeros()) > 63 {
                return i64::MIN;
            }
            (m << e, false)
        } else if e <= -64 {
            (0, m != 0)
        } else {
            (m >> -e, m & ((1 << -e) - 1) != 0)
        };
        if negative {
            -(whole as i64)
        } else {
            i64::try_from(whole + u128::from(fraction)).unwrap_or(i64::MIN)
        }
    }
}

/// `n / q` rounded to 64 bits, half to even, as `(mantissa, exponent)`; `None` when it rounds to an
/// infinity or to zero (the caller has ruled out values far outside the range).
fn round(n: &Big, q: &Big) -> Option<(u64, i32)> {
    if n.shl((-ZERO_EXP2) as usize).compare(q).is_le() {
        return None;
    }
    // Scale so that the quotient has 66 or 67 bits: two or three to round with.
    let shift = 66 - (n.bits() as i64 - q.bits() as i64);
    let (mut num, den) = if shift >= 0 { (n.shl(shift as usize), q.clone()) } else { (n.clone(), q.shl(-shift as usize)) };
    let mut quotient: u128 = 0;
    for bit in (0..68).rev() {
        let d = den.shl(bit);
        if num.compare(&d).is_ge() {
            num.subtract(&d);
            quotient |= 1 << bit;
        }
    }
    let drop = (128 - quotient.leading_zeros()) - 64;
    let (mut m, rest, half) = (quotient >> drop, quotient & ((1 << drop) - 1), 1u128 << (drop - 1));
    if rest > half || (rest == half && (!num.is_zero() || m & 1 == 1)) {
        m += 1;
    }
    let mut exponent = i64::from(drop) - shift;
    if m >> 64 != 0 {
        m >>= 1;
        exponent += 1;
    }
    (exponent + 64 <= MAX_EXP2).then_some((m as u64, exponent as i32))
}

/// Just enough of an unsigned big integer: little-endian 32-bit limbs.
#[derive(Debug, Clone, Default)]
struct Big(Vec<u32>);

impl From<u32> for Big {
    fn from(v: u32) -> Self {
        Big(vec![v])
    }
}

impl Big {
    fn is_zero(&self) -> bool {
        self.0.iter().all(|&l| l == 0)
    }

    fn bits(&self) -> usize {
        let top = self.0.iter().rposition(|&l| l != 0).map_or(0, |i| i + 1);
        if top == 0 { 0 } else { top * 32 - self.0[top - 1].leading_zeros() as usize }
    }

    /// `self = self * by + add`.
    fn mul_add(&mut self, by: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in &mut self.0 {
            let cur = u64::from(*limb) * u64::from(by) + carry;
            *limb = cur as u32;
            carry = cur >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn times_pow10(mut self, mut exp: usize) -> Big {
        while exp > 0 {
            let step = exp.min(9);
            self.mul_add(10u32.pow(step as u32), 0);
            exp -= step;
        }
        self
    }

    fn shl(&self, bits: usize) -> Big {
        let (limbs, rem) = (bits / 32, bits % 32);
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for &l in &self.0 {
            out.push(if rem == 0 { l } else { (l << rem) | carry });
            carry = if rem == 0 { 0 } else { l >> (32 - rem) };
        }
        out.push(carry);
        Big(out)
    }

    fn compare(&self, other: &Big) -> std::cmp::Ordering {
        let len = self.0.len().max(other.0.len());
        let limb = |b: &Big, i: usize| b.0.get(i).copied().unwrap_or(0);
        (0..len).rev().map(|i| limb(self, i).cmp(&limb(other, i))).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
    }

    /// `self -= other`, which must not be larger.
    fn subtract(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let cur = i64::from(self.0[i]) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(cur < 0);
            self.0[i] = cur.rem_euclid(1 << 32) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(text: &str) -> Option<i64> {
        parse(text.as_bytes()).map(LongDouble::millis_ceil)
    }

    /// Expected values from `(long long) ceill(strtold(text, NULL) * 1000.0)` on x86-64 glibc, and from
    /// redis-server 7.0 for what `string2ld` refuses.
    #[test]
    fn timeouts_in_milliseconds_as_redis_computes_them() {
        for (text, want) in [
            ("0", Some(0)),
            ("-0", Some(0)),
            ("1", Some(1000)),
            ("0.5", Some(500)),
            (".5", Some(500)),
            ("5.", Some(5000)),
            ("+1", Some(1000)),
            ("01", Some(1000)),
            ("0.0001", Some(1)),
            ("-0.0001", Some(0)),
            ("-0.001", Some(0)),
            ("-0.002", Some(-1)),
            ("0.001", Some(1)),
            ("0x10", Some(16000)),
            ("0x.8", Some(500)),
            ("0x1p3", Some(8000)),
            ("1e-400", Some(1)),
            ("9223372036854775.807", Some(i64::MAX)),
            ("9223372036854775.808", Some(i64::MIN)),
            ("1e16", Some(i64::MIN)),
            ("1e1000", Some(i64::MIN)),
            ("inf", Some(i64::MIN)),
            ("-Infinity", Some(i64::MIN)),
            ("0e99999999999999999999", Some(0)),
            ("", None),
            (" 1", None),
            ("1 ", None),
            ("1e", None),
            ("1e+", None),
            ("0x", None),
            ("0xp1", None),
            ("0x1p", None),
            ("nan", None),
            ("-nan", None),
            ("infinit", None),
            ("1_0", None),
            ("1\0", None),
            ("1e5000", None),
            ("1.19e4932", None),
            ("1e-4951", None),
            ("1e99999999999999999999", None),
            ("1e-99999999999999999999", None),
            ("0x1p16384", None),
            ("0x1p-16446", None),
        ] {
            assert_eq!(millis(text), want, "{text:?}");
        }
        assert_eq!(millis("1.18e4932"), Some(i64::MIN), "finite in 80 bits, so the conversion overflows");
        assert_eq!(millis("1e-4940"), Some(1), "a subnormal is still above zero");
        assert_eq!(millis("0x1p-16445"), Some(1), "the smallest subnormal");
        assert_eq!(millis("0x1p16383"), Some(i64::MIN));
    }
}
