//! Learning-rate schedules as pure functions of the step.

use serde::{Deserialize, Serialize};

/// What the learning rate does after the warmup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Linear decay to zero at the last step (transformers' `get_linear_schedule_with_warmup`).
    #[default]
    Linear,
    /// Half a cosine from the peak to zero at the last step
    /// (`get_cosine_schedule_with_warmup`, 0.5 cycles).
    Cosine,
    /// The peak until the end.
    Constant,
}

/// The learning rate of 0-based `step` of `total`: a linear warmup over `warmup` steps (step 0
/// already trains at `base / warmup`, as the reference trainer does), then `schedule`.
pub fn learning_rate(
    schedule: Schedule,
    base: f64,
    step: usize,
    warmup: usize,
    total: usize,
) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    match schedule {
        Schedule::Linear => linear_warmup_decay(base, step, warmup, total),
        Schedule::Constant => base,
        Schedule::Cosine => {
            if total <= warmup {
                return 0.0;
            }
            let progress = ((step - warmup) as f64 / (total - warmup) as f64).min(1.0);
            base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

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
    use super::{Schedule, learning_rate, linear_warmup_decay};

    #[test]
    fn schedules_at_chosen_steps() {
        let lr = |s: Schedule, step| learning_rate(s, 1.0, step, 10, 110);
        for s in [Schedule::Linear, Schedule::Cosine, Schedule::Constant] {
            assert_eq!(lr(s, 0), 0.1, "{s:?} warmup");
            assert_eq!(lr(s, 9), 1.0, "{s:?} warmup end");
            assert_eq!(lr(s, 10), 1.0, "{s:?} peak");
        }
        // Cosine: halfway through the decay (step 60 of 10..110) is half the peak; a quarter
        // in is (1 + cos(π/4)) / 2.
        assert!((lr(Schedule::Cosine, 60) - 0.5).abs() < 1e-15);
        assert!(
            (lr(Schedule::Cosine, 35) - (1.0 + (std::f64::consts::FRAC_PI_4).cos()) / 2.0).abs()
                < 1e-15
        );
        assert!(lr(Schedule::Cosine, 110).abs() < 1e-15);
        assert!((lr(Schedule::Linear, 60) - 0.5).abs() < 1e-15);
        assert_eq!(lr(Schedule::Constant, 109), 1.0);
    }

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
