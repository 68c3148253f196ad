//! Kubernetes quantities (`512Mi`, `10Gi`, `1.5G`, `100000`) as byte counts.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Bytes in `q`; fractions of a byte round down. Errors name the quantity.
pub fn bytes(q: &Quantity) -> Result<u64, String> {
    let raw = q.0.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, suffix) = raw.split_at(split);
    let multiplier: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        _ => {
            return Err(format!(
                "{raw:?} is not a byte quantity (use e.g. 512Mi, 10Gi, 1G)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a byte quantity (use e.g. 512Mi, 10Gi, 1G)"))?;
    let bytes = value * multiplier;
    if !(bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64) {
        return Err(format!("{raw:?} is out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn binary_decimal_and_plain_quantities() {
        assert_eq!(bytes(&q("512Mi")).unwrap(), 512 << 20);
        assert_eq!(bytes(&q("10Gi")).unwrap(), 10 << 30);
        assert_eq!(bytes(&q("1.5Gi")).unwrap(), 3 << 29);
        assert_eq!(bytes(&q("2G")).unwrap(), 2_000_000_000);
        assert_eq!(bytes(&q("123")).unwrap(), 123);
    }

    #[test]
    fn bad_quantities_are_named() {
        for bad in ["10GB", "lots", "", "1e3", "-1Gi", "500m"] {
            let err = bytes(&q(bad)).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }
}
