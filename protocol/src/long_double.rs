//! Numbers as Redis 7.0 reads them with `string2ld` (glibc's `strtold` into the x86-64 `long double`:
//! the x87 80-bit format, a 64-bit mantissa), adds them (INCRBYFLOAT) and prints them (`ld2string`'s
//! `%.17Lf`).
//!
//! An `f64` is not enough to give the same answers: `-0.001` seconds is accepted by Redis as a blocking
//! timeout (its product with 1000 lands just above -1, so the ceiling is 0) while `f64` arithmetic makes
//! it exactly -1, "negative"; `1e1000` is a finite `long double` but not a finite `f64`; 0.1 + 0.2 prints
//! as "0.3" from a `long double` at 17 decimals. So values are rounded to 64 mantissa bits exactly, with
//! a small big integer.

/// A value read by `strtold`, rounded to the 80-bit format's 64-bit mantissa.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongDouble {
    /// `mantissa × 2^exponent`; a zero mantissa is zero.
    Finite {
        negative: bool,
        mantissa: u64,
        exponent: i32,
    },
    Infinite {
        negative: bool,
    },
}

/// `MAX_LONG_DOUBLE_CHARS`: Redis refuses longer text outright.
const MAX_CHARS: usize = 5 * 1024;
/// The largest finite value is just under 2^16384.
const MAX_EXP2: i64 = 16384;
/// The exponent of the smallest subnormal, 2^-16445 (and of the smallest normal, 2^63 × 2^-16445).
const MIN_EXP2: i64 = -16445;

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
    let (n, q) = if hex {
        let exp2 = exp + scale * radix_exp;
        let lead = value.bits() as i64 - 1 + exp2;
        if !(MIN_EXP2 - 1..MAX_EXP2).contains(&lead) {
            return None;
        }
        let (n, q) = if exp2 >= 0 { (value.shl(exp2 as usize), Big::from(1)) } else { (value, Big::from(1).shl(-exp2 as usize)) };
        (n, q)
    } else {
        let exp10 = exp + scale;
        // value < 10^(lead + 1): a lead of 4933 is past the largest (1.19e4932), one of -4952 below
        // half the smallest (1.8e-4951).
        let lead = significant - 1 + exp10;
        if !(-4951..=4932).contains(&lead) {
            return None;
        }
        let (n, q) =
            if exp10 >= 0 { (value.times_pow10(exp10 as usize), Big::from(1)) } else { (value, Big::from(1).times_pow10(-exp10 as usize)) };
        (n, q)
    };
    // Beyond the largest finite value, or so small that it rounds to zero: `strtold`'s ERANGE.
    match divide(negative, &n, &q) {
        LongDouble::Finite { mantissa: 0, .. } | LongDouble::Infinite { .. } => None,
        finite => Some(finite),
    }
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
        if negative { -(whole as i64) } else { i64::try_from(whole + u128::from(fraction)).unwrap_or(i64::MIN) }
    }
}

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble::Finite { negative: false, mantissa: 0, exponent: 0 };

    /// `self + other` in `long double` arithmetic (rounded half to even); `None` when the sum is an
    /// infinity or NaN: an infinite operand, or a finite sum past the largest finite value.
    pub fn checked_add(self, other: LongDouble) -> Option<LongDouble> {
        let (
            LongDouble::Finite { negative: na, mantissa: ma, exponent: ea },
            LongDouble::Finite { negative: nb, mantissa: mb, exponent: eb },
        ) = (self, other)
        else {
            return None;
        };
        if ma == 0 && mb == 0 {
            return Some(LongDouble::Finite { negative: na && nb, mantissa: 0, exponent: 0 });
        } else if mb == 0 {
            return Some(self);
        } else if ma == 0 {
            return Some(other);
        }
        // Top bits set, so the larger exponent is the larger magnitude.
        let normal = |m: u64, e: i32| (m << m.leading_zeros(), i64::from(e) - i64::from(m.leading_zeros()));
        let (a, b) = (normal(ma, ea), normal(mb, eb));
        let ((neg, (ma, ea)), (mb, eb)) = if (a.1, a.0) >= (b.1, b.0) { ((na, a), b) } else { ((nb, b), a) };
        let gap = ea - eb;
        // Exactly, with the smaller aligned below the larger; past 62 bits apart the smaller's low bits
        // only matter as "something below" (sticky): the sum has well over 64 bits either way.
        let (big, small, e, sticky) = if gap <= 62 {
            (u128::from(ma) << gap, u128::from(mb), eb, false)
        } else {
            let s = gap - 62;
            let (small, lost) = if s >= 64 { (0, true) } else { (mb >> s, mb & ((1 << s) - 1) != 0) };
            (u128::from(ma) << 62, u128::from(small), ea - 62, lost)
        };
        let m = if na == nb {
            big + small
        } else {
            // big - (small + a fraction) = (big - small - 1) + (1 - the fraction).
            big - small - u128::from(sticky)
        };
        // An exact cancellation is +0, as in round-to-nearest.
        match round(neg && m != 0, m, e, sticky) {
            LongDouble::Infinite { .. } => None,
            finite => Some(finite),
        }
    }

    /// `printf("%.17Lf")` as glibc prints it: fixed point, 17 decimals, the exact binary value rounded
    /// half to even; `inf` / `-inf`. A negative value that rounds to zero keeps its sign.
    pub fn fixed17(self) -> String {
        let (negative, mantissa, exponent) = match self {
            LongDouble::Infinite { negative } => return if negative { "-inf" } else { "inf" }.to_string(),
            LongDouble::Finite { negative, mantissa, exponent } => (negative, mantissa, exponent),
        };
        const SCALE: u128 = 100_000_000_000_000_000;
        let digits = if exponent >= 0 {
            let mut digits = Big::from_u64(mantissa).shl(exponent as usize).decimal();
            digits.push_str("00000000000000000");
            digits
        } else {
            // mantissa × 10^17 < 2^121: a shift of 122 or more leaves less than half.
            let (product, shift) = (u128::from(mantissa) * SCALE, exponent.unsigned_abs());
            let mut whole = product.checked_shr(shift).unwrap_or(0);
            if (1..128).contains(&shift) {
                let (rest, half) = (product & ((1 << shift) - 1), 1u128 << (shift - 1));
                if rest > half || (rest == half && whole & 1 == 1) {
                    whole += 1;
                }
            }
            format!("{whole:018}")
        };
        let point = digits.len() - 17;
        format!("{}{}.{}", if negative { "-" } else { "" }, &digits[..point], &digits[point..])
    }

    /// `ld2string(..., LD_STR_HUMAN)`, the text INCRBYFLOAT stores and replies: `%.17Lf` without the
    /// trailing zeros of its fraction (nor a bare trailing point), and "-0" as "0". Redis's buffer
    /// (`MAX_LONG_DOUBLE_CHARS`) holds any `long double` this way: at most 4,952 characters.
    pub fn human(self) -> String {
        let mut text = self.fixed17();
        if text.contains('.') {
            text.truncate(text.trim_end_matches('0').trim_end_matches('.').len());
        }
        if text == "-0" { "0".to_string() } else { text }
    }
}

/// `n / q` rounded to the 80-bit format.
fn divide(negative: bool, n: &Big, q: &Big) -> LongDouble {
    // Scale so that the quotient has 66 or 67 bits: two or three to round with, the remainder sticky.
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
    round(negative, quotient, -shift, !num.is_zero())
}

/// `m × 2^e`, plus something below its last bit when `sticky`, rounded half to even to a 64-bit
/// mantissa: fewer bits for a subnormal (the exponent stops at 2^-16445), zero below half the
/// smallest subnormal, an infinity past the largest finite value. The sticky part must lie below
/// the rounding point (callers give a mantissa of more than 64 bits whenever it is set).
fn round(negative: bool, m: u128, e: i64, sticky: bool) -> LongDouble {
    let bits = i64::from(128 - m.leading_zeros());
    let drop = (bits - 64).max(MIN_EXP2 - e).max(0);
    let mut kept = if drop >= 128 { 0 } else { m >> drop };
    if drop > 0 && drop <= bits {
        // drop ≤ bits ≤ 128, so `half` fits.
        let half = 1u128 << (drop - 1);
        let rest = if drop == 128 { m } else { m & ((1 << drop) - 1) };
        if rest > half || (rest == half && (sticky || kept & 1 == 1)) {
            kept += 1;
        }
    }
    let mut exponent = e + drop;
    if kept >> 64 != 0 {
        kept >>= 1;
        exponent += 1;
    }
    if kept == 0 {
        LongDouble::Finite { negative, mantissa: 0, exponent: 0 }
    } else if exponent + 64 > MAX_EXP2 {
        LongDouble::Infinite { negative }
    } else {
        LongDouble::Finite { negative, mantissa: kept as u64, exponent: exponent as i32 }
    }
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
    fn from_u64(v: u64) -> Self {
        Big(vec![v as u32, (v >> 32) as u32])
    }

    /// The decimal digits, "0" for zero.
    fn decimal(mut self) -> String {
        const CHUNK: u32 = 1_000_000_000;
        let mut chunks = Vec::new();
        while !self.is_zero() {
            chunks.push(self.div_small(CHUNK));
        }
        let mut out = chunks.last().map_or_else(|| "0".to_string(), u32::to_string);
        for chunk in chunks.iter().rev().skip(1) {
            out.push_str(&format!("{chunk:09}"));
        }
        out
    }

    /// `self /= by`, returning the remainder.
    fn div_small(&mut self, by: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.0.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / u64::from(by)) as u32;
            rem = cur % u64::from(by);
        }
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        rem as u32
    }

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

    fn sum(a: &str, b: &str) -> Option<String> {
        let (a, b) = (parse(a.as_bytes()).unwrap(), parse(b.as_bytes()).unwrap());
        a.checked_add(b).map(LongDouble::fixed17)
    }

    /// Expected values from `printf("%.17Lf", strtold(a, NULL) + strtold(b, NULL))` on x86-64 glibc.
    #[test]
    fn sums_printed_as_glibc_prints_them() {
        for (a, b, want) in [
            ("0.1", "0.2", "0.30000000000000000"),
            ("1e17", "1", "100000000000000001.00000000000000000"),
            ("5.0e3", "0", "5000.00000000000000000"),
            ("1.1e-10", "0", "0.00000000011000000"),
            ("0x1p-18", "0", "0.00000381469726562"),
            ("0x3p-19", "0", "0.00000572204589844"),
            ("-1e-20", "0", "-0.00000000000000000"),
            ("1", "-1", "0.00000000000000000"),
            ("-0", "-0", "-0.00000000000000000"),
            ("-0", "0", "0.00000000000000000"),
            ("1", "1e-30", "1.00000000000000000"),
            ("1", "-1e-30", "1.00000000000000000"),
            ("-123456789.987654321", "0.000000001", "-123456789.98765432000072906"),
            ("0x1p-16445", "0x1p-16445", "0.00000000000000000"),
            ("1e-4940", "1", "1.00000000000000000"),
            // Ties and near-ties at the 64th bit, exactly and with the smaller operand's bits sticky.
            ("0x8000000000000001p0", "0.5", "9223372036854775810.00000000000000000"),
            ("0x8000000000000001p0", "-0.5", "9223372036854775808.00000000000000000"),
            ("0x8000000000000001p0", "0x8000000000000001p-64", "9223372036854775810.00000000000000000"),
            ("0x8000000000000001p0", "-0x8000000000000001p-64", "9223372036854775808.00000000000000000"),
            ("0x8000000000000001p0", "0xFFFFFFFFFFFFFFFFp-65", "9223372036854775809.00000000000000000"),
            ("0x8000000000000001p0", "-0xFFFFFFFFFFFFFFFFp-65", "9223372036854775809.00000000000000000"),
        ] {
            assert_eq!(sum(a, b).as_deref(), Some(want), "{a} + {b}");
        }
        let big = sum("1e300", "0").unwrap();
        assert!(big.starts_with("10000000000000000000089973240795591938705239442732907479382600823212656465961809357558491520"), "{big}");
        assert!(big.ends_with("915104006144.00000000000000000"), "{big}");
        assert_eq!(LongDouble::Infinite { negative: true }.fixed17(), "-inf");
    }

    #[test]
    fn sums_past_the_range_or_with_an_infinity_are_refused() {
        assert_eq!(sum("1.18e4932", "1.18e4932"), None);
        assert_eq!(sum("-1.18e4932", "-1.18e4932"), None);
        assert_eq!(sum("inf", "1"), None);
        assert_eq!(sum("1", "-inf"), None);
        assert_eq!(sum("inf", "-inf"), None);
        assert!(sum("1.18e4932", "-1.18e4932").is_some());
        let largest = sum("0xffffffffffffffffp16320", "0").unwrap();
        assert_eq!(largest.len(), 4933 + 18, "LDBL_MAX has 4,933 digits");
        assert!(largest.starts_with("11897314953572317650"), "{largest}");
        assert_eq!(sum("0xffffffffffffffffp16320", "0x1p16319"), None, "half an ulp rounds up to infinity");
        assert!(sum("0xffffffffffffffffp16320", "0x1p16318").is_some());
    }

    #[test]
    fn subnormal_sums_keep_fewer_bits() {
        let sub = |a: &str, b: &str| parse(a.as_bytes()).unwrap().checked_add(parse(b.as_bytes()).unwrap()).unwrap();
        let exact = |m: u64, e: i32| LongDouble::Finite { negative: false, mantissa: m, exponent: e };
        assert_eq!(sub("0x1p-16445", "0x1p-16445"), exact(2, -16445));
        assert_eq!(sub("0x1p-16382", "-0x1p-16445"), exact((1 << 63) - 1, -16445));
        assert_eq!(parse(b"0x3p-16446"), Some(exact(2, -16445)), "1.5 of the smallest rounds to even");
        assert_eq!(parse(b"0x5p-16447"), Some(exact(1, -16445)), "1.25 of the smallest rounds down");
    }

    /// `ld2string(LD_STR_HUMAN)` as redis-server 7.0 replies to INCRBYFLOAT.
    #[test]
    fn human_text_as_incrbyfloat_replies() {
        let human = |text: &str| parse(text.as_bytes()).unwrap().human();
        for (text, want) in [
            ("0", "0"),
            ("-0", "0"),
            ("-1e-20", "0"),
            ("1e-17", "0.00000000000000001"),
            ("5e-18", "0"), // just below 5e-18 in binary
            ("6e-18", "0.00000000000000001"),
            ("4.9e-18", "0"),
            ("10", "10"),
            ("-2.5", "-2.5"),
            ("5.0e3", "5000"),
            ("0x10", "16"),
            ("1.1e-10", "0.00000000011"),
            ("inf", "inf"),
            ("-inf", "-inf"),
        ] {
            assert_eq!(human(text), want, "{text}");
        }
        let mut value = LongDouble::ZERO;
        for want in ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"] {
            value = value.checked_add(parse(b"0.1").unwrap()).unwrap();
            value = parse(value.human().as_bytes()).unwrap();
            assert_eq!(value.human(), want);
        }
    }
}
