//! Learning-rate schedules as pure functions of the step.

/// Linear warmup from `base/warmup` to `base` over `warmup` steps, then linear decay to zero at
/// `total` steps: the learning rate of 0-based `step`.
///
/// This is transformers' `get_linear_schedule_with_warmup` and the reference trainer's
/// `LambdaLR`, step for step: step 0 already trains at `base / warmup`.
pub fn linear_warmup_decay(base: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        base * (step + 1) as f64 / warmup as f64
    } else if total > warmup {
        base * ((total - step.min(total)) as f64 / (total - warmup) as f64).max(0.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::linear_warmup_decay;

    #[test]
    fn matches_the_reference_lambda() {
        // The reference: (s + 1) / warmup if s < warmup else max(0, (steps - s) / (steps - warmup)).
        let lr = |s| linear_warmup_decay(5e-4, s, 20, 200);
        assert!((lr(0) - 5e-4 / 20.0).abs() < 1e-15);
        assert!((lr(19) - 5e-4).abs() < 1e-15);
        assert!((lr(20) - 5e-4).abs() < 1e-15);
        assert!((lr(110) - 5e-4 * 90.0 / 180.0).abs() < 1e-15);
        assert!((lr(199) - 5e-4 / 180.0).abs() < 1e-15);
        assert_eq!(lr(200), 0.0);
        assert_eq!(linear_warmup_decay(1.0, 3, 0, 10), 0.7);
    }
}
