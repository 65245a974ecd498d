//! The statistics behind `report`: medians over reps, same-rep ratios,
//! per-rep combinations of limits, and number formatting for the table.

use std::collections::BTreeSet;

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn med(v: &[(i64, f64)]) -> Option<f64> {
    median(v.iter().map(|x| x.1).collect())
}

/// Median over reps of a / b, pairing values of the same rep.
pub fn paired(a: &[(i64, f64)], b: &[(i64, f64)]) -> Option<f64> {
    median(
        a.iter()
            .filter_map(|(r, x)| {
                b.iter()
                    .find(|(r2, _)| r2 == r)
                    .filter(|(_, y)| *y != 0.0)
                    .map(|(_, y)| x / y)
            })
            .collect(),
    )
}

/// Per-rep combination of several limit sides (min or max).
pub fn combine(sets: &[Vec<(i64, f64)>], pick_min: bool, scale: f64) -> Vec<(i64, f64)> {
    let reps: BTreeSet<i64> = sets.iter().flatten().map(|x| x.0).collect();
    reps.into_iter()
        .filter_map(|r| {
            let vs: Vec<f64> = sets
                .iter()
                .map(|s| s.iter().find(|x| x.0 == r).map(|x| x.1))
                .collect::<Option<_>>()?;
            let v = if pick_min {
                vs.into_iter().fold(f64::INFINITY, f64::min)
            } else {
                vs.into_iter().fold(f64::NEG_INFINITY, f64::max)
            };
            Some((r, v * scale))
        })
        .collect()
}

/// A table cell: thousands separated above 1,000, three significant
/// figures or so below.
pub fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if !x.is_finite() => "-".into(),
        Some(x) => {
            let a = x.abs();
            if a >= 1000.0 {
                let s = format!("{:.0}", x);
                let (sign, digits) = s.split_at(if s.starts_with('-') { 1 } else { 0 });
                let mut out = String::new();
                for (i, c) in digits.chars().enumerate() {
                    if i > 0 && (digits.len() - i) % 3 == 0 {
                        out.push(',');
                    }
                    out.push(c);
                }
                format!("{sign}{out}")
            } else if a >= 100.0 {
                format!("{x:.0}")
            } else if a >= 10.0 {
                format!("{x:.1}")
            } else if a >= 1.0 {
                format!("{x:.2}")
            } else {
                format!("{x:.3}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_pairs() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![1.0, 2.0]), Some(1.5));
        assert_eq!(median(vec![]), None);
        let a = [(0, 10.0), (1, 20.0), (2, 30.0)];
        let b = [(0, 5.0), (2, 10.0)];
        assert_eq!(paired(&a, &b), Some(2.5));
        assert_eq!(
            combine(&[a.to_vec(), b.to_vec()], true, 1.0),
            vec![(0, 5.0), (2, 10.0)]
        );
        assert_eq!(fmt(Some(102390.4)), "102,390");
        assert_eq!(fmt(Some(0.0221)), "0.022");
    }
}
